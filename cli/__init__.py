"""The `ecgcl` command line: click commands and rich rendering, no ML logic."""
