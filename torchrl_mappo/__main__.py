from torchrl_mappo.cli import entry

entry()
