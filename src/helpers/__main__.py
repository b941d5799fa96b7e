"""``python -m helpers run|build|strip|sync``: see :mod:`helpers.book.cli`."""
import sys

from .book.cli import main

if __name__ == "__main__":
    sys.exit(main())
