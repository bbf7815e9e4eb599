import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while the command line itself loads
    sys.exit(130)

sys.exit(main())
