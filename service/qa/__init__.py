"""The question-answering library: no web or CLI framework is imported here.

- ``types``: the domain contract (``Passage``, ``Citation``, ``Answer``) and its bounds;
- ``query``: check and analyse a question once;
- ``retrieval`` and ``fusion``: rank passages;
- ``answering``, ``answer_types`` and ``messages``: pick and cite answer sentences, or abstain;
- ``engine``: the :class:`~service.qa.engine.Engine` that ties them together.
"""
