"""Loaders of the registered datasets, one module per family.

Importing this package registers every built-in dataset with
`sketchrec.data.registry` (each module declares its datasets' files,
checksums, provenance and verified counts next to its loader functions).
Use `sketchrec.data.registry.load(name)` rather than calling loaders directly.
"""

from sketchrec.data.loaders import sessions  # noqa: F401  (registration side effect)
from sketchrec.data.loaders import ratings  # noqa: F401,E402
