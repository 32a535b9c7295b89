#!/usr/bin/env bash
# git in a scratch repository (pack and grep threads on): init, add a few thousand files, several commits, branch and merge,
# log with diffs, blame, grep, repack and gc, fsck. Dates, names and config are pinned so the two
# runs produce the same object ids.
source "$(dirname "$0")/preload_common.sh"
need git awk
FILES=${HK_GIT_FILES:-2000}
export HOME=$TMP GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=hk GIT_AUTHOR_EMAIL=hk@example.invalid GIT_COMMITTER_NAME=hk \
  GIT_COMMITTER_EMAIL=hk@example.invalid GIT_AUTHOR_DATE='2020-01-01T00:00:00Z' GIT_COMMITTER_DATE='2020-01-01T00:00:00Z' \
  LC_ALL=C TZ=UTC
cat > "$TMP/work.sh" <<EOS
set -e
git init -q -b main repo && cd repo
git config gc.auto 0; git config pack.threads 2; git config core.pager cat
for d in \$(seq 0 36); do mkdir dir\$d; done
awk -v n=$FILES 'BEGIN { for (i = 0; i < n; i++) { f = "dir" (i % 37) "/file" i ".txt";
  for (k = 0; k < 20 + i % 50; k++) print "line " k " of file " i " " (i * k % 101) > f; close(f) } }'
git add -A && git commit -q -m "initial: $FILES files"
for c in 1 2 3 4 5; do
  awk -v c=\$c 'BEGIN { for (i = c; i < $FILES; i += 7) { f = "dir" (i % 37) "/file" i ".txt"; print "change " c " to " i >> f; close(f) } }'
  git commit -q -a -m "change \$c"
done
git checkout -q -b side HEAD~2
echo side > side.txt && git add side.txt && git commit -q -m side
git checkout -q main && git merge -q --no-edit side
git log --stat --format='%H %s' | head -400
git log --format=%H | wc -l
git blame dir3/file3.txt | head -20
git grep --threads=2 -c 'change 3' | sort | head -20
git diff HEAD~3 --stat | tail -3
git repack -a -d -f -q --window=20 && git gc -q
git count-objects -v | grep -E '^(count|in-pack|packs)'
git fsck --full --no-progress 2>&1
git rev-parse HEAD HEAD^{tree}
EOS
run_compare git g bash "$TMP/work.sh"
echo "$name: ok"
