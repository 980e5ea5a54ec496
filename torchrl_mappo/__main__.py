import sys

from torchrl_mappo.cli import main

sys.exit(main())
