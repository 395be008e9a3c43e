package atomicfile

// sysSyncfs is syncfs(2)'s number on linux/amd64 (the syscall package does
// not export it for this architecture).
const sysSyncfs = 306

// sysRenameat2 is renameat2(2)'s number on linux/amd64.
const sysRenameat2 = 316
