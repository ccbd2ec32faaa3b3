"""`python -m kinit_cli` runs the command-line tool."""

from kinit_cli.cli import main

if __name__ == "__main__":
    main()
