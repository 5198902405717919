"""Applications built on the pivot library: the ``pivot`` command (``cli``), the offline demo
model (``demo``), the attention-modes table (``modes_table``), the int8 accuracy report
(``quant_report``) and the training recipes of the zoo models (``recipes``).

The library (``import pivot``) never imports this package; applications import the library.
"""
