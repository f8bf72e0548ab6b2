import sys

from oneshot.cli import main

sys.exit(main())
