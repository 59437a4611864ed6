// Package config loads and validates fastws's config.ini.
//
// The file is ini, read with gopkg.in/ini.v1 in the manner of php.ini:
//
//	; comment            # comment too
//	[fastws]             ; the daemon, and default limits for every instance
//	runDir = ./run       ; an inline comment needs a space before its ; or #
//	[instance.telnet]    ; one section per instance: [instance.NAME]
//	port = 19910
//
// A double-quoted value is taken as is, comment characters included
// (instanceName = "a ; b"). Section and key names are case-sensitive and keep FastWS's camelCase.
// Keys before any section, unknown sections and unknown keys are errors, as
// are duplicate sections and keys, which ini.v1 would silently merge.
//
// Parse never stops at the first problem: it returns Errors, one line per
// problem, each naming the file, the line, the section, the key, the bad
// value and what is allowed:
//
//	config.ini:12: [instance.telnet] port = "abc": not a port (1-65535)
//
// Values are parsed here rather than with ini.v1's MustInt and friends,
// which write the default back into the key on a parse error and so hide
// it. ini.v1 keeps no line numbers either; scan.go finds them by handing
// ini.v1 the file one statement at a time, so that ini.v1 alone decides
// what each line is.
//
// Relative paths anchor at the config file, not the working folder: runDir
// resolves against the config file's folder and logFile against runDir, so
// the shipped config.ini runs from anywhere as an ordinary user.
//
// A Config is read-only once returned and safe for concurrent use.
//
// # How to add a config key
//
// Add the key to daemonKeys, instanceKeys or limitKeys (parse.go), parse it
// in daemon, instance or setLimit with an error that names the file,
// section and key and says what is allowed, and document it with its
// default in the shipped config.ini (a test parses it). A new field of
// Instance or Limits restarts the instance on reload by default (Same
// compares the whole struct); TestSameFields fails until the field is
// listed in its restarts table, with false only if Same is taught to
// leave it out.
package config
