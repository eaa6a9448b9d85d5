// data/: token datasets, sampler, tokenizers, preparation.
