// Package hf is a client of the Hugging Face Hub for kiln's model pulls:
// it turns a reference such as hf:stabilityai/sd-turbo@main into a pinned
// commit and the files of an ONNX diffusers model folder, and downloads
// those files resumably with their SHA-256 checked. It is the groundwork
// of `kiln models pull hf:ORG/REPO[/SUBFOLDER][@REVISION]`: models/store
// stages the files and writes the lock (Snapshot.Commit and, per file, its
// Path, Size and SHA-256), and later downloads the same files again from
// the lock.
//
// # Protocol
//
// The Client speaks the Hub's HTTP protocol as huggingface_hub does
// (constants.py, hf_api.py, file_download.py, utils/_http.py,
// utils/_headers.py, utils/_auth.py):
//
//   - The endpoint is HF_ENDPOINT, default https://huggingface.co. The token
//     is HF_TOKEN (or the older HUGGING_FACE_HUB_TOKEN), else the token file
//     `hf auth login` writes ($HF_TOKEN_PATH, else $HF_HOME/token, HF_HOME
//     defaulting to ~/.cache/huggingface); HF_HUB_DISABLE_IMPLICIT_TOKEN
//     turns both off. It is sent as "Authorization: Bearer TOKEN", and only
//     to the endpoint's scheme and host.
//   - GET /api/models/{repo}/revision/{revision} gives the commit ("sha")
//     the revision points to. Everything afterwards uses that commit, so a
//     branch moving during a pull changes nothing.
//   - GET /api/models/{repo}/tree/{commit}/{subfolder}?recursive=true
//     lists the files with their sizes, git blob ids ("oid") and, for
//     Git LFS files, "lfs": {"oid": SHA-256, "size", "pointerSize"}; the
//     Link header's rel="next" URL continues the listing.
//   - HEAD /{repo}/resolve/{commit}/{path} tells X-Repo-Commit and, for
//     LFS files, X-Linked-Etag (the quoted SHA-256) and X-Linked-Size with
//     a 302 to the CDN holding the data. Redirects on the same host (a
//     renamed repository) are followed with the token; the redirect to
//     another host is where the data is fetched from, without the token.
//   - Errors carry X-Error-Code (GatedRepo, RepoNotFound,
//     RevisionNotFound, EntryNotFound) and X-Error-Message; 401 without a
//     code stands for a private or missing repository. 408, 429 and 5xx
//     are retried, after Retry-After when the server sends one.
//   - A transfer resumed with "Range: bytes=N-" must come back as 206 with
//     a Content-Range starting at N; a 200 means the server ignored the
//     range, and the file is written again from the start.
//
// # Which files
//
// Resolve keeps what kiln's model folders need (models.Folder): the
// model_index.json at the folder's top, and in each component folder one
// level down its ONNX graphs (*.onnx) with their external data
// (*.onnx_data, *.onnx.data, weights.pb, and any other file beside a graph
// except other formats' weights), tokenizer files (vocab.json, merges.txt,
// tokenizer.json, tokenizer_config.json, special_tokens_map.json,
// spiece.model, ...), scheduler/scheduler_config.json and the
// components' config.json. It leaves out PyTorch, safetensors, .bin,
// .ckpt, .msgpack and .h5 weights, documentation and pictures, anything
// deeper than one folder (other exports), and the safety_checker and
// feature_extractor components, which kiln does not run. A folder without
// ONNX graphs fails with ErrNoONNX and the optimum-cli command that
// exports one.
//
// Xet-backed repositories are downloaded over plain HTTP too: the Hub
// redirects their files to a CDN like LFS files.
//
// # Tests
//
// Package hftest is a loopback Hub speaking this protocol (API, resolve
// endpoint, a second host for the CDN, access rules and error codes); the
// tests of this package, of models/store and of the kiln command run the
// Client against it.
package hf
