// Package store manages model folders on disk: it pulls them from the
// Hugging Face Hub or over HTTP(S), pins them in kiln.lock, verifies them
// and lists them. It is the logic behind `kiln models pull`, `kiln models
// verify`, `kiln models list` and kiln build's model checks; the functions
// take an io.Writer for their output and return errors that say what to
// do, so the CLI only parses flags.
//
// # Where models go
//
// kiln.yaml names model folders relative to the project, so a pull goes
// into the project: the folder kiln.yaml's models: entry of that name
// points to, else models/NAME (see DefaultDest). Any other folder inside
// the project can be given; one outside it (or the project folder itself)
// is refused with an *OutsideError. While a pull runs its files go to a staging folder next to the
// destination, DEST.kiln-partial/, unfinished files as FILE.part; the
// staging folder is renamed to DEST only once every file's size and sha256
// match, so a half-finished pull never looks like a model. An interrupted
// pull (network failure, Ctrl-C, a killed process) leaves the staging
// folder, and pulling again resumes each file where it stopped with an
// HTTP Range request (a server that ignores ranges makes kiln download
// that file again from the start). A pull that fails removes what holds
// no data (empty FILE.part files, empty folders, and the staging folder
// and the folders it created above DEST when nothing is left in them), so
// what remains is what the next pull resumes from. A lock on the staging
// folder keeps two pulls of the same model apart.
//
// # kiln-manifest.json
//
// Every pulled folder records its files in kiln-manifest.json, which
// `kiln models verify` checks the folder against. A server offering a
// model puts the same file at the root of the model's base URL (make it
// with BuildManifest or Record):
//
//	{
//	  "version": 1,
//	  "name": "tiny-turbo",
//	  "kind": "turbo",
//	  "description": "SD-Turbo distilled to 1-4 steps",
//	  "source": "https://example.org/models/tiny-turbo/",
//	  "files": [
//	    {"path": "model_index.json", "size": 541, "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
//	    {"path": "unet/model.onnx", "size": 1735420, "sha256": "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"}
//	  ]
//	}
//
// version is 1; name, kind (sd15, sd2, sdxl, lcm or turbo), description
// and source (the base URL it was pulled from, written by kiln) are
// optional; files is required: every file of the folder except the
// manifest itself, with its slash-separated path relative to the folder,
// its size in bytes and its sha256 in hex.
//
// # The model catalogue
//
// A catalogue names models kiln can pull; a project keeps one as
// models.catalog.yaml (CatalogName), and one can be served over HTTP(S)
// too. It is YAML (or JSON):
//
//	version: 1
//	models:
//	  - name: tiny-turbo
//	    description: SD-Turbo distilled to 1-4 steps
//	    kind: turbo
//	    url: https://huggingface.co/ORG/REPO/resolve/REVISION/
//	    files:
//	      - {path: model_index.json, size: 541, sha256: 9f86d0…}
//	      - {path: unet/model.onnx, size: 1735420, sha256: 60303a…}
//	  - name: sd15
//	    kind: sd15
//	    url: https://example.org/models/sd15/   # files listed in its kiln-manifest.json
//
// url is the folder the files are fetched from (file URL = url + path; a
// Hugging Face repository's "resolve" URL at a pinned revision works, as
// does any static file server). When files is left out, the list is read
// from url + "kiln-manifest.json" at pull time. In a catalogue served over
// HTTP(S), url may be relative to the catalogue's own URL.
//
// # Pulls from Hugging Face
//
// `kiln models pull hf:ORG/REPO[/SUBFOLDER][@REVISION] [--as NAME]`, and
// a kiln.yaml model written {hf: ORG/REPO, revision: REV, subfolder: DIR},
// pull an ONNX diffusers / optimum export from the Hugging Face Hub with
// models/hf (see its documentation for the protocol, HF_ENDPOINT and
// HF_TOKEN): the revision is resolved to a commit, only the files an ONNX
// model folder needs are downloaded (no PyTorch or safetensors weights),
// each checked against its SHA-256 (the Hub lists those of LFS files; a
// small file kept in git is checked against its git blob id and hashed),
// into models/NAME (or the entry's path:) through the same staging folder,
// resumption and symlink rules as every pull. NAME defaults to the
// repository's name, lower-cased. A repository without an ONNX export is
// refused with the optimum-cli command that makes one.
//
// # kiln.lock
//
// Every hf: pull records what it pulled in kiln.lock beside kiln.yaml,
// which the user commits, like go.sum: per model name the repository,
// subfolder and revision pulled, the commit the revision pointed to, and
// every file's path, size and SHA-256. It is JSON in one stable layout
// (models sorted by name, fields in a fixed order, one file per line
// sorted by path, a final newline) written atomically, so a pull changes
// only the lines of what changed:
//
//	{
//	  "version": 1,
//	  "models": {
//	    "turbo": {
//	      "hf": "stabilityai/sd-turbo",
//	      "subfolder": "onnx",
//	      "revision": "main",
//	      "commit": "1681ed09e0cff58eeb41e878a49893228b78b94c",
//	      "files": [
//	        {"path": "model_index.json", "size": 541, "sha256": "9f86d0…"},
//	        {"path": "unet/model.onnx", "size": 1735420, "sha256": "60303a…"}
//	      ]
//	    }
//	  }
//	}
//
// subfolder is left out when it is the repository's top. A pull of a
// model whose entry still matches kiln.yaml downloads exactly the pinned
// commit and files, whatever the branch does since, so every machine gets
// the same bytes (and a Hub serving other bytes at that commit is an
// error); `kiln models pull --update NAME` resolves the revision again
// and moves the entry. An entry whose repository, subfolder or revision
// differs from kiln.yaml's does not apply: the next pull resolves what
// kiln.yaml names. An entry for a model kiln.yaml does not name is kept,
// and `kiln models pull NAME` pulls it.
//
// A folder must hold what its entry pins: `kiln models verify` names each
// file that is missing, has another size or another SHA-256, and kiln
// build (CheckLocks) stops with exit 1 naming model and file. The build's
// check reads sizes, and hashes from the memory kiln keeps of file hashes
// in its cache folder (models.HashCache, shared with model fingerprints,
// and filled by the pull itself), so a build that changes nothing reads no
// model file. `kiln models pull NAME` restores a damaged folder, reusing
// the files that are intact. `kiln models pull` without a model (and kiln
// build --pull) does this for every model of kiln.yaml: see PullAll.
//
// # The download cache
//
// Every file a pull verified is kept in kiln's cache folder as
// blobs/sha256/<hex>, read-only, whatever project it came with. A pull of
// a file with a known SHA-256 takes it from there when the blob still has
// that hash: a hard link where the cache and the project share a file
// system, else a copy checked as it is written. So a second project, or a
// second clone with the same kiln.lock, needs no network at all (even
// with HF_HUB_OFFLINE set). Being read-only keeps a linked model file from
// being changed in place, which would change every project's copy; a blob
// that no longer has its hash is dropped and downloaded again. Failures
// to use the cache only cost downloads.
//
// # What `kiln models pull` accepts
//
//   - hf:ORG/REPO[/SUBFOLDER][@REVISION]: a Hugging Face repository
//     folder (see PullHF).
//   - NAME: kiln.yaml's model NAME when its entry has hf: (or kiln.lock
//     pins it), else the catalogue entry NAME.
//   - A URL ending in .yaml, .yml or .json: a catalogue; the fragment
//     names the entry (https://example.org/models.catalog.yaml#sd15), or
//     the catalogue must hold a single model.
//   - Any other http(s) URL: a model's base URL serving kiln-manifest.json
//     at its root (a URL naming kiln-manifest.json itself works too). The
//     model's name is the manifest's name, else the repository name of a
//     ".../ORG/REPO/resolve/REV/" URL, else the URL's last path element.
//
// # Hostile input
//
// Catalogues and manifests may come from anyone. Every file path must be a
// clean relative path inside the model folder (internal/safepath: no "..",
// no absolute path or drive letter, no backslash), listed once, never both
// a file and a folder, and not kiln-manifest.json; the file lists of the
// Hub and of kiln.lock (which a merge or a hand edit may have changed)
// are checked the same way. A pull never writes,
// renames or removes through a symlink below the project folder: a
// symlink among the destination's parents, at the destination, at
// DEST.kiln-partial or DEST.kiln-old, or anywhere in the staging folder
// (a FILE.part included) fails the pull with an error naming the link and
// its target, and neither the link nor what it points to is touched;
// files are opened without following symlinks (safepath.OpenFile).
// Reading an existing model folder to compare it may follow symlinks that
// stay inside the project. A server sending more bytes than the list gives, or
// a file whose hash differs, is rejected and its data deleted. Catalogues
// and manifests larger than 16 MiB are refused. Credentials are sent only
// where PullOptions.Authorize decides (see BearerFor).
package store
