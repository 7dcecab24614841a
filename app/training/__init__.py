"""Training the Net: CIFAR-10 readers, the training loop, and the `python -m app.train` CLI.
Imports the engine and the model, never the web; the web may call the loop, never the CLI."""
