#!/usr/bin/env bash
# ruby (Debian's ruby3.1, which sizes its malloc accounting with malloc_usable_size): strings,
# arrays and hashes that grow and shrink, Marshal dumps and loads of deep structures, GC.compact
# (objects moved, their malloc'd bodies kept), four threads building and handing over data (freed
# by another thread), and fork from a process with running threads, the children allocating on
# the inherited heap. Output and exit status compared with a run without the preload.
source "$(dirname "$0")/preload_common.sh"
need ruby
N=${HK_RUBY_N:-200000}
cat > "$TMP/work.rb" <<'EOS'
require 'digest'
n = Integer(ARGV[0])
h = {}
n.times { |i| h["key#{i * 7919 % (n / 3)}"] = [i, "v" * (i % 80), { n: i % 7 }] }
d = Digest::MD5.new
h.keys.sort.each { |k| d << k << h[k][1] }
puts "hash #{h.size} #{d.hexdigest}"
s = +""
(n / 2).times { |i| s << (i % 10 == 0 ? "\n" : (65 + i % 26).chr) }
words = s.scan(/[A-E]+/)
t = s.gsub(/[KLM]/) { |c| c.downcase * 3 }
puts "strings #{s.bytesize} #{words.size} #{t.bytesize} #{Digest::MD5.hexdigest(t)}"
a = (1..n).map { |i| [i.to_s * (i % 5), i] }
a.sort_by! { |x| [-x[1] % 97, x[0]] }
a = a.each_slice(3).map(&:first)
puts "arrays #{a.size} #{Digest::MD5.hexdigest(a.first(1000).join(','))}"
deep = (1..2000).to_h { |i| ["k#{i}", (1..20).map { |j| { v: "s" * j, l: (1..(j % 20)).to_a } }] }
copy = Marshal.load(Marshal.dump(deep))
puts "marshal #{copy == deep} #{Marshal.dump(copy).bytesize}"
deep = nil; copy = nil
GC.start
GC.compact if GC.respond_to?(:compact)
puts "after compact #{h.size} #{h["key42"].inspect[0, 40]}"
q = Queue.new
producers = 2.times.map { |id| Thread.new { (n / 10).times { |i| q << ("p#{id}-#{i}" * (1 + i % 9)) } } }
consumers = 2.times.map { Thread.new { sum = 0; held = []; while (x = q.pop); sum += x.bytesize; held << x; held.shift(50) if held.size > 100; end; sum } }
producers.each(&:join)
2.times { q << nil }
total = consumers.map(&:value).sum
puts "threads #{total}"
churn = Thread.new { z = {}; 200_000.times { |i| z[i % 3000] = "c" * (i % 200) } }
codes = 20.times.map do |i|
  pid = fork { x = (1..(3000 + i)).map { |k| k.to_s * (k % 30) }; exit!(x.sum(&:size) % 251) }
  Process.wait(pid)
  $?.exitstatus
end
churn.join
puts "fork #{codes.sum} #{codes.count(nil)}"
EOS
run_compare ruby r ruby "$TMP/work.rb" "$N"
echo "$name: ok"
