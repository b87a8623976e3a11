"""Known gaps: cases that are expected to fail, each with the reason.

Each entry is a glob over case ids. The cases are marked as *strict* expected failures: if one
starts to pass, the run fails, so this list cannot go stale.
"""

KNOWN_GAPS = [
    ("*-writes/*-reads/file-raw-0",
     "a raw segment cannot be empty: a size-0 object cannot be mapped, so no participant can "
     "create one (the stdlib raises ValueError, Boost a size error, shmbridge InvalidSize). "
     "Hand over possibly-empty files with the framed or size-prefixed layout."),
    *[(pattern,
       "the Python actor does not speak array-* / chan-array-* yet: shmbridge.SharedArray, "
       "writer.loan_array and message.array() are being built on the `arrays` branch and were "
       "not in main when the C, C++ and Rust actors got them (issue 12); the actor's "
       "subcommands and this entry go when they land")
      for pattern in ("python-writes/*-reads/array-*", "*-writes/python-reads/array-*",
                      "python-writes/*-reads/chan-array-*", "*-writes/python-reads/chan-array-*")],
]
