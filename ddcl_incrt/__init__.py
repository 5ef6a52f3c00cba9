"""ddcl-incrt: command line, and importable test tooling (hypothesis strategies) for other projects."""
