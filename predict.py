"""Thin wrapper: ``python predict.py [overrides]`` = ``glacier predict [overrides]``."""

from glacier.tasks.predict import main

if __name__ == "__main__":
    main()
