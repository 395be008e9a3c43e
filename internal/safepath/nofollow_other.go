//go:build !unix

package safepath

import "os"

// Outside Unix there is no O_NOFOLLOW: OpenFile relies on the Lstat checks
// of the folders above and on the file-type check after opening.
const (
	noFollow = 0
	nonBlock = 0
)

func clearNonBlock(*os.File) {}
