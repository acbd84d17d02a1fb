"""The replay engine: the track loop, folding activations into spectra, compare's replay."""
