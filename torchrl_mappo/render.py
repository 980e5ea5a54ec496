"""Headless video of VMAS episodes, drawn with matplotlib (no display, no OpenGL).

VMAS's own ``render()`` needs pyglet and an OpenGL context (a display or a
virtual one). Drawing the world's entities from the simulator state with
matplotlib's Agg backend works on any machine: spheres as circles, boxes
and lines as rectangles, in the scenario's colours; the first env of the
batch is shown.
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


class VmasFrames:
    """Collects RGB frames of env 0 of a VMAS simulator."""

    def __init__(self, sim, size: int = 400):
        import matplotlib

        matplotlib.use("Agg")
        self.sim = sim
        self.size = size
        self.frames: list[np.ndarray] = []
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

    def save(self, path: str | Path, fps: int = 15) -> Path:
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


def check_video_path(path: str | Path, family: str) -> Path:
    """Fail early (a config error) on a video the run cannot make."""
    path = Path(path)
    if path.suffix not in (".gif", ".mp4"):
        raise ConfigError(f"--video {path}: use a .gif or .mp4 file name")
    if path.suffix == ".mp4" and shutil.which("ffmpeg") is None:
        raise ConfigError(f"--video {path}: .mp4 needs ffmpeg on PATH (apt-get install ffmpeg); or write a .gif")
    if family != "vmas":
        raise ConfigError(f"--video: rendering is implemented for VMAS envs; this run's env is {family}")
    from torchrl_mappo.plot import check_writable

    check_writable(path, "--video")
    return path
