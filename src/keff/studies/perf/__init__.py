"""Performance studies: how fast keff's paths are against the libraries they wrap."""
