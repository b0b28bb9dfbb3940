#!/usr/bin/env bash
# Validate glTF files with the Khronos glTF-Validator (https://github.com/KhronosGroup/glTF-Validator),
# the npm build "gltf-validator", run by node.
#
#   scripts/validate_gltf.sh FILE.gltf|FILE.glb [...]
#
# Prints each file's validation report (JSON) on stdout and a one-line summary on stderr; exits 1 if any
# file has errors (warnings and infos do not fail), 2 on usage or setup problems.
# The validator is installed on first use into $GLTF_VALIDATOR_DIR
# (default: ${XDG_CACHE_HOME:-~/.cache}/teamwork/gltf-validator), with npm from the public registry.
set -euo pipefail

VERSION="2.0.0-dev.3.10"  # pinned: the report format and issue codes change between releases
DIR="${GLTF_VALIDATOR_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/teamwork/gltf-validator}"

if [ "$#" -lt 1 ]; then
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
command -v node >/dev/null || { echo "Error: node is not installed (https://nodejs.org)" >&2; exit 2; }
if [ ! -f "$DIR/node_modules/gltf-validator/package.json" ]; then
    command -v npm >/dev/null || { echo "Error: npm is needed to install gltf-validator" >&2; exit 2; }
    echo "Installing gltf-validator@$VERSION into $DIR" >&2
    mkdir -p "$DIR"
    npm install --prefix "$DIR" --no-save --no-audit --no-fund "gltf-validator@$VERSION" >&2
fi

status=0
for file in "$@"; do
    [ -f "$file" ] || { echo "Error: $file: no such file" >&2; status=2; continue; }
    # External resources (the textures) are read relative to the .gltf, as a viewer would.
    GLTF_VALIDATOR_DIR="$DIR" node -e '
const fs = require("fs");
const path = require("path");
const validator = require(path.join(process.env.GLTF_VALIDATOR_DIR, "node_modules", "gltf-validator"));
const file = process.argv[1];
const bytes = new Uint8Array(fs.readFileSync(file));
validator.validateBytes(bytes, {
    uri: path.basename(file),
    externalResourceFunction: (uri) => new Promise((resolve, reject) => {
        fs.readFile(path.resolve(path.dirname(file), decodeURIComponent(uri)), (err, data) =>
            err ? reject(err.toString()) : resolve(new Uint8Array(data)));
    }),
}).then((report) => {
    const i = report.issues;
    console.log(JSON.stringify(report, null, 2));
    console.error(`${file}: numErrors=${i.numErrors} numWarnings=${i.numWarnings} numInfos=${i.numInfos} ` +
                  `numHints=${i.numHints}`);
    process.exit(i.numErrors > 0 ? 1 : 0);
}, (error) => {
    console.error(`${file}: cannot validate: ${error}`);
    process.exit(2);
});
' "$file" || status=$?
done
exit "$status"
