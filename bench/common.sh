# Shared by the scripts that run a peer beside tcluster (sourced by them, not run).

# `whole NAME VALUE`: a count must be a whole number of 1 or more; anything else is refused
# (exit status 2, naming it) before anything starts.
whole() {
    case "$2" in
        '' | *[!0-9]* | 0*) echo "$0: $1 must be a whole number of 1 or more, not '$2'" >&2; exit 2 ;;
    esac
}

# `port_free PORT`: refuses to go on when a Redis already answers on 127.0.0.1:PORT (it would be
# measured instead of the one the script starts).
port_free() {
    if command -v redis-cli >/dev/null && redis-cli -p "$1" ping >/dev/null 2>&1; then
        echo "$0: something already answers on 127.0.0.1:$1; stop it first" >&2
        exit 1
    fi
}
