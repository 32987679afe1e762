#!/usr/bin/env bash
# Print the path of a Python interpreter of the given minor version (e.g. 3.10),
# looking at PATH first, then pyenv. Fails with instructions when there is none.
set -euo pipefail
want="$1"
for candidate in "python$want" "$HOME/.pyenv/versions/$want"*/bin/python "/usr/local/bin/python$want" "/usr/bin/python$want"; do
  path=$(command -v "$candidate" 2>/dev/null || true)
  [ -n "$path" ] || continue
  if "$path" -c "import sys; assert '%d.%d' % sys.version_info[:2] == '$want'" 2>/dev/null; then
    echo "$path"; exit 0
  fi
done
if command -v pyenv >/dev/null 2>&1; then
  version=$(pyenv versions --bare 2>/dev/null | grep -E "^$want(\.|$)" | sort -V | tail -n 1 || true)
  if [ -n "$version" ]; then echo "$(pyenv root)/versions/$version/bin/python"; exit 0; fi
fi
cat >&2 <<MSG
error: Python $want was not found.
  Rasa Open Source 3.6 runs only on Python 3.8-3.10, so the Rasa environment needs python$want.
  Install it with pyenv:   pyenv install $want   (then run make again)
  or with your system:     apt-get install python$want python$want-venv
  or run Rasa from the Docker image:  docker compose up rasa   (see README.md)
MSG
exit 1
