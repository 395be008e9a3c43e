package atomicfile

import "syscall"

// sysSyncfs is syncfs(2)'s number on linux/arm64.
const sysSyncfs = syscall.SYS_SYNCFS

// sysRenameat2 is renameat2(2)'s number on linux/arm64.
const sysRenameat2 = 276
