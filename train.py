"""Thin wrapper: ``python train.py [overrides]`` = ``glacier train [overrides]``."""

from glacier.tasks.train import main

if __name__ == "__main__":
    main()
