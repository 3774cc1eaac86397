"""One module per clinical task: pure numpy pre/post-processing around the engine."""
