// Package store manages model folders on disk: it pulls them over HTTP(S),
// verifies them and lists them. It is the logic behind `kiln models pull`,
// `kiln models verify` and `kiln models list`; the functions take an
// io.Writer for their output and return errors that say what to do, so
// the CLI only parses flags.
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
// # What `kiln models pull` accepts
//
//   - NAME: the catalogue entry NAME.
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
// a file and a folder, and not kiln-manifest.json. A pull never writes,
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
