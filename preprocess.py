"""Thin wrapper: ``python preprocess.py [overrides]`` = ``glacier preprocess [overrides]``."""

from glacier.tasks.preprocess import main

if __name__ == "__main__":
    main()
