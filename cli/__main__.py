"""`python -m ecgcl.cli` (also how `torchrun -m ecgcl.cli` starts the CLI)."""

from ecgcl.cli.main import cli

if __name__ == "__main__":
    cli(prog_name="ecgcl")
