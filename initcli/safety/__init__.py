"""Treating every input as hostile: regular files only, bounded numbers and shapes, sanitized text.

Owns: opening and reading regular files with their identity checked (`files`), validated numbers
and shapes with their element and rank limits (`numbers`), the one sanitizer every name, path
and message passes through before it is printed (`sanitize`), the command's budget of time and
counts every parser spends from (`budget`), and glob patterns expanded within it (`globs`).

May import: `initcli.errors` only, so that every layer above may use it.
"""
