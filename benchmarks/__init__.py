"""bfdask benchmark suite: ``python -m benchmarks [--quick] [--out DIR]`` (see __main__)."""
