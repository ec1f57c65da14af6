"""Model bundles: one directory per trained pipeline, written atomically, sealed, checked on load.

Layout::

    BUNDLE/
      CURRENT                 the name of the complete version below and a newline, nothing else
      v-01764693000123456789-1a2b3c/   (nanoseconds since 1970: names sort in save order)
        manifest.json         format, library version, model class + parameters, metrics,
                              configuration, sha256 and size of every other file
        manifest.seal         the manifest's own digest: "sha256 <hex>", or "hmac-sha256 <hex>"
                              for a bundle saved with a key
        weights.safetensors   every numeric array of the model (safetensors: no pickle)
        strings.json          text arrays, if any
        items.parquet         the item id map (external ids of the model's items)
        extras.safetensors    optional named arrays served with the model (item vectors for
                              /similar, item text vectors for /search, ...)
      .v-...partial/          a save in progress, or what an aborted one left (see below)

A save writes a new version directory, fsyncs it, then swaps `CURRENT` with one atomic
rename; the previous version is deleted only afterwards. A crash (or kill -9) at any point
leaves `CURRENT` naming a complete bundle: the old one, or the new one.

Why sealed, and why checked beyond the seal. A bundle is served as it is found on disk, so a
change nobody noticed (a flipped byte, an edited parameter, a stray file) must stop the load,
not change recommendations or turn every request into a 500. The seal makes any change to any
byte visible: it covers the manifest, which holds the sha256 of every other file, and `CURRENT`
may only hold a sibling version's exact name. With `SKETCHREC_BUNDLE_KEY` set at save time the
seal is an HMAC-SHA256 under that key: such a bundle loads only where the same key is set, and
where a key is set, only bundles signed with it load (an unsigned copy is not a way around it).
A plain sha256 seal catches accidents, not someone who recomputes it; so what the model is
built from is also checked for what it must be, from the model class and its parameters alone:
the parameters by the class (`Recommender.check_params`: names, types, allowed values), every
array's name, shape, dtype and index range against what a model of that class and those
parameters holds (`expected_arrays`), the item ids (one unique id per item), the extras the
service uses; and the built model must answer a one-click session. Every refusal is a
`BundleError` naming the file and what is wrong. Bundles of format 1 (unsealed) are refused
with a request to re-save them.

Leftovers of aborted saves. A save writes into `.v-<time>-<random>.partial` and holds a shared
`flock` on that directory until it is renamed into place; the kernel drops the lock when the
writer exits, kill -9 included. A `.partial` is stale when no process holds its lock and it was
last modified at least `STALE_AFTER` seconds ago (the margin covers the instant between
creating the directory and locking it); on a file system without locks, after
`UNLOCKED_STALE_AFTER`. Stale partials are removed at the start of every save into the bundle
and by `sketchrec bundle gc PATH` (`collect_garbage`), which also removes versions beyond the
kept ones.

Where each part lives:

    sketchrec/versioned.py        sealed, atomically versioned directories (new_version,
                                  commit_version, read_version, read_retrying) and their
                                  leftovers (stale_partials, collect_garbage): the storage under
                                  model bundles and search bundles alike, so it sits in the
                                  bottom layer (retrieval uses it too)
    sketchrec/bundle/arrays.py    what a model's arrays must be (expected_arrays, check_arrays)
                                  and safetensors as a shared memory map (map_safetensors)
    sketchrec/bundle/model.py     model bundles (save_bundle, load_bundle, Bundle)

Every name is importable from `sketchrec.bundle` as before the split.
"""

from sketchrec.bundle.arrays import Csr, Dense, bundleable, check_arrays, expected_arrays, map_safetensors
from sketchrec.bundle.model import ITEM_EXTRAS, MODEL_FILES, Bundle, load_bundle, save_bundle
from sketchrec.versioned import (FORMAT, KEY_ENV, MANIFEST, SEAL, STALE_AFTER, UNLOCKED_STALE_AFTER, BundleError,
                                 abort_version, collect_garbage, commit_version, new_version, read_retrying,
                                 read_version, stale_partials)

__all__ = ["FORMAT", "ITEM_EXTRAS", "KEY_ENV", "MANIFEST", "MODEL_FILES", "SEAL", "STALE_AFTER",
           "UNLOCKED_STALE_AFTER", "Bundle", "BundleError", "Csr", "Dense", "abort_version", "bundleable",
           "check_arrays", "collect_garbage", "commit_version", "expected_arrays", "load_bundle", "map_safetensors",
           "new_version", "read_retrying", "read_version", "save_bundle", "stale_partials"]
