"""Decoding many files once: the on-disk decode-once cache (`build`, `store`), the in-memory store used for data
encrypted at rest (`memory`), and the one worker pool both run on (`pool`)."""
