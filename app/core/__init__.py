"""Pure pieces shared by pipelines: no I/O, no Faust, no wall clock."""
