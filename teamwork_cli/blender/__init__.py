"""The Blender add-on shipped with the package: its source, `teamwork_material/` (package data that runs inside
Blender and is never imported by the CLI or the library), and `bundle.py`, which zips it for installation."""
