package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// MakeRunDir creates runDir with mode 0700 if it does not exist, then
// checks it with CheckRunDir.
func MakeRunDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create runDir: %w", err)
	}
	return CheckRunDir(dir)
}

// CheckRunDir refuses a runDir that anyone but the daemon's user could
// write into. Whoever can write there can plant a symbolic link or a hard
// link at fastws.pid or fastws.log, and the daemon, perhaps root, would
// truncate or append to the file it names; or take the status socket's
// name. Like sshd's StrictModes, fastws then refuses to start rather than
// work around it: the fix is the operator's, and takes one chmod.
//
// A runDir that is itself a symbolic link is followed only if the link
// belongs to the daemon's user or root, the rule of Linux's
// fs.protected_symlinks for sticky folders.
func CheckRunDir(dir string) error {
	euid := os.Geteuid()
	li, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("runDir: %w", err)
	}
	if li.Mode().Type() == fs.ModeSymlink {
		if uid := Owner(li); uid != euid && uid != 0 {
			return fmt.Errorf("runDir %s is a symbolic link owned by uid %d, not by you (uid %d) or root: point runDir at the folder itself", dir, uid, euid)
		}
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("runDir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("runDir %s is not a folder: remove it, or point runDir elsewhere", dir)
	}
	if uid := Owner(fi); uid != euid {
		return fmt.Errorf("runDir %s is owned by uid %d, not by uid %d that fastws runs as: chown %d %s, or point runDir at a folder of your own", dir, uid, euid, euid, dir)
	}
	perm := fi.Mode().Perm()
	var who string
	switch {
	case perm&0o002 != 0:
		who = "others"
	case perm&0o020 != 0:
		who = "its group"
	default:
		return nil
	}
	return fmt.Errorf("runDir %s is writable by %s (mode %#o): chmod 700 %s, or point runDir at a folder only you can write", dir, who, perm, dir)
}

// Owner returns the uid that owns fi's file, or -1 if fi does not say.
func Owner(fi os.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// OpenLog opens the daemon's log file for appending, creating it with mode
// 0640. A symbolic link there is refused, not followed, and so is anything
// but a regular file or a character device (/dev/null).
func OpenLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_NOFOLLOW, 0o640) // os adds O_CLOEXEC
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode().Type() == fs.ModeSymlink {
				return nil, fmt.Errorf("log file %s is a symbolic link, which fastws does not follow: remove it, and find out who put it there", path)
			}
		}
		return nil, fmt.Errorf("open log file: %w", err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() && fi.Mode().Type() != fs.ModeDevice|fs.ModeCharDevice {
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("open log file: %w", err)
		}
		return nil, fmt.Errorf("log file %s is neither a regular file nor a device: remove it, or change logFile", path)
	}
	return f, nil
}
