"""The end-to-end room: a real ``tanya serve`` process (and a browser, when chromium exists).

Each module starts its own server in a fixture; helpers come from ``tests.support``.
"""
