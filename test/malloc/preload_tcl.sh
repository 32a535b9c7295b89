#!/usr/bin/env bash
# tclsh (Tcl 8.6, threaded build: small objects come from Tcl's own per-thread caches, refilled
# from and returned to malloc; big strings, lists and dicts are malloc and realloc): lists and
# dicts that grow, string appends and maps, lsort, regsub, binary, and child interpreters created
# and deleted (each a few hundred KiB freed at once). Output and exit status compared.
source "$(dirname "$0")/preload_common.sh"
TCLSH=$(command -v tclsh || command -v tclsh8.6 || true)
[ -n "$TCLSH" ] || skip "tclsh is not installed"
N=${HK_TCL_N:-150000}
cat > "$TMP/work.tcl" <<'EOS'
set n [lindex $argv 0]
proc h {s} { set a 7; foreach c [split [string range $s 0 20000] ""] { set a [expr {($a * 31 + [scan $c %c]) % 2147483647}] }; return $a }
set l {}; set d [dict create]
for {set i 0} {$i < $n} {incr i} {
  lappend l [expr {$i * 7919 % 100003}]
  dict set d k[expr {$i % 20011}] [string repeat x [expr {$i % 70}]]
  if {$i % 40000 == 39999} { set l [lrange $l 20000 end] }
}
puts "lists [llength $l] [dict size $d] [h [join [lsort -integer [lrange $l 0 5000]] ,]]"
set s ""
for {set i 0} {$i < $n} {incr i} { append s [format "%d:%s;" $i [string repeat ab [expr {$i % 7}]]] }
set c [regsub -all {(\d+):(ab)} $s {\2=\1} r]
set m [string map {ab BA ; |} $s]
puts "strings [string length $s] $c [h $r] [h $m] [string length [string reverse $s]]"
set b [binary format i* [lrange $l 0 9999]]
binary scan $b i* back
puts "binary [string length $b] [expr {$back eq [lrange $l 0 9999]}]"
set tot 0
for {set i 0} {$i < 40} {incr i} {
  set c [interp create]
  $c eval {set x {}; for {set j 0} {$j < 20000} {incr j} { lappend x [list $j [string repeat y [expr {$j % 30}]]] }}
  incr tot [$c eval {llength $x}]
  interp delete $c
}
puts "interps $tot"
puts "threaded [expr {[info exists tcl_platform(threaded)] && $tcl_platform(threaded)}]"
EOS
run_compare tcl t "$TCLSH" "$TMP/work.tcl" "$N"
echo "$name: ok"
