"""Artifacts: adapters, merged models, datasets and collections with immutable versions, lineage and labels.

A version is a folder of files plus a `manifest.json` (each file's sha256 and size, and the version's
lineage). The workspace keeps its versions under `<data_dir>/artifacts/<kind>/<name>/<version>/` and
indexes them in the store; a remote (Azure Blob Storage, or a shared folder) holds the same layout, with
small files in packs (`packs`).
Push and pull are one copy between two storages: parallel, resumable (files whose hash already
matches are skipped), verified, and published by writing the manifest last.
"""
