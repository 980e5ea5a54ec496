"""Headless video of evaluation episodes (the first env of the batch).

VMAS's own ``render()`` needs pyglet and an OpenGL context (a display or a
virtual one). Drawing the world's entities from the simulator state with
matplotlib's Agg backend works on any machine: spheres as circles, boxes
and lines as rectangles, in the scenario's colours (:class:`VmasFrames`).
PettingZoo and MAgent2 envs draw themselves: built with
``render_mode="rgb_array"``, their ``render()`` returns the frame
(:class:`RenderedFrames`; pygame, which mpe2 and PettingZoo's classic envs
draw with, needs no display for it).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from torchrl_mappo.config import ConfigError


def _color(entity) -> Any:
    c = entity.color
    c = getattr(c, "value", c)
    if hasattr(c, "tolist"):
        c = c.tolist()
    c = list(c)[:3]
    return c if max(c) <= 1.0 else [x / 255 for x in c]


RENDERING_FAMILIES = ("vmas", "pettingzoo", "magent")


class Frames:
    """RGB frames of one env's episodes, saved as a ``.gif`` or ``.mp4``."""

    size = 400

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []

    def begin(self) -> None:
        """Before the first step: draw the start where the simulator can (VMAS)."""

    def capture(self, title: str = "") -> None:
        raise NotImplementedError

    def save(self, path: str | Path, fps: int = 15) -> Path:
        """Write the frames to ``path``: ``.gif`` (PIL) or ``.mp4`` (ffmpeg)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not self.frames:
            raise ValueError("no frames to save")
        if path.suffix == ".gif":
            from PIL import Image

            images = [Image.fromarray(f) for f in self.frames]
            images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
        elif path.suffix == ".mp4":
            import matplotlib.pyplot as plt
            from matplotlib.animation import FFMpegWriter

            fig = plt.figure(figsize=(self.size / 100, self.size / 100), dpi=100)
            ax = fig.add_axes([0, 0, 1, 1])
            ax.axis("off")
            image = ax.imshow(self.frames[0])
            writer = FFMpegWriter(fps=fps)
            with writer.saving(fig, str(path), dpi=100):
                for frame in self.frames:
                    image.set_data(frame)
                    writer.grab_frame()
            plt.close(fig)
        return path


class VmasFrames(Frames):
    """Collects RGB frames of env 0 of a VMAS simulator, drawn with matplotlib."""

    def __init__(self, sim, size: int = 400):
        import matplotlib

        super().__init__()
        matplotlib.use("Agg")
        self.sim = sim
        self.size = size
        world = sim.world
        xs = world.x_semidim or 1.0
        ys = world.y_semidim or 1.0
        self.extent = (max(xs, ys) + 0.2) * 1.05

    def capture(self, title: str = "") -> None:
        import matplotlib.pyplot as plt
        from matplotlib.patches import Circle, Rectangle

        entities = self.sim.world.entities
        # Unbounded worlds: keep everyone in view (agents can wander off).
        far = max(float(e.state.pos[0].abs().max()) for e in entities) + 0.3
        self.extent = max(self.extent, far)
        fig = plt.figure(figsize=(self.size / 100, self.size / 100), dpi=100)
        ax = fig.add_axes([0, 0, 1, 1])
        ax.set_xlim(-self.extent, self.extent)
        ax.set_ylim(-self.extent, self.extent)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.add_patch(Rectangle((-self.extent, -self.extent), 2 * self.extent, 2 * self.extent, color="white"))
        for entity in entities:
            x, y = entity.state.pos[0].tolist()
            shape = entity.shape
            color = _color(entity)
            if hasattr(shape, "radius"):
                ax.add_patch(Circle((x, y), shape.radius, color=color, alpha=0.9))
            else:
                length = getattr(shape, "length", 0.1)
                width = max(getattr(shape, "width", 0.0), 0.01)
                ax.add_patch(Rectangle((x - length / 2, y - width / 2), length, width, color=color))
        if title:
            ax.text(-self.extent * 0.95, self.extent * 0.88, title, fontsize=9)
        fig.canvas.draw()
        frame = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
        plt.close(fig)
        self.frames.append(frame)

    def begin(self) -> None:
        self.capture("episode 1")


class RenderedFrames(Frames):
    """Frames an env draws itself (``render()`` of an env built with ``render_mode="rgb_array"``),
    scaled up to about :attr:`size` pixels wide where smaller (MAgent2 draws one pixel per cell), the
    episode written in a corner."""

    def __init__(self, raw: Any) -> None:
        super().__init__()
        self.raw = raw

    def capture(self, title: str = "") -> None:
        from PIL import Image, ImageDraw

        frame = self.raw.render()
        if not isinstance(frame, np.ndarray) or frame.ndim != 3:
            raise ConfigError(f"--video: {type(self.raw).__name__}.render() gave no RGB image with "
                              "render_mode='rgb_array'; this env cannot be filmed")
        image = Image.fromarray(np.ascontiguousarray(frame[..., :3]).astype(np.uint8))
        scale = max(1, self.size // image.width)
        if scale > 1:
            image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
        if title:
            ImageDraw.Draw(image).text((6, 4), title, fill=(0, 0, 0))
        self.frames.append(np.asarray(image))


def check_video_path(path: str | Path, family: str) -> Path:
    """Fail early (a config error) on a video the run cannot make."""
    path = Path(path)
    if path.suffix not in (".gif", ".mp4"):
        raise ConfigError(f"--video {path}: use a .gif or .mp4 file name")
    if path.suffix == ".mp4" and shutil.which("ffmpeg") is None:
        raise ConfigError(f"--video {path}: .mp4 needs ffmpeg on PATH (apt-get install ffmpeg); or write a .gif")
    if family not in RENDERING_FAMILIES:
        raise ConfigError(f"--video: rendering is implemented for {', '.join(RENDERING_FAMILIES)} envs; "
                          f"this run's env is {family}")
    from torchrl_mappo.plot import check_writable

    check_writable(path, "--video")
    return path


def video_recorder(env: Any) -> Frames:
    """The recorder of ``env``'s first copy: VMAS drawn from its state, others by their own ``render()``."""
    from torchrl_mappo.envs import snapshot

    sim = snapshot.vmas_simulator(env)
    return VmasFrames(sim) if sim is not None else RenderedFrames(snapshot.first_raw_env(env))
