# bash completion for shotsync (installed as share/bash-completion/completions/shotsync).
# Keep the lists in step with cli/*_cmd.cpp and dist/man/shotsync.1.

_shotsync() {
  local cur prev words cword
  if declare -F _init_completion >/dev/null; then
    _init_completion || return
  else
    # Without the bash-completion package (e.g. a minimal server).
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    words=("${COMP_WORDS[@]}")
    cword=$COMP_CWORD
  fi

  local global="--config -q --quiet -v --verbose --json -P --progress --no-progress --version --log-file --ca-file -h --help"
  local commands="plan sync push status verify init check doctor ls ignore pull watch team shared version"

  case $prev in
    --config|--log-file|--ca-file|--csv)
      COMPREPLY=($(compgen -f -- "$cur"))
      compopt -o filenames 2>/dev/null
      return ;;
    --root|--dest)
      COMPREPLY=($(compgen -d -- "$cur"))
      compopt -o filenames 2>/dev/null
      return ;;
    --include)
      # pull's --include is the variant; sync's and plan's is a glob.
      [[ " ${words[*]} " == *" pull "* ]] && COMPREPLY=($(compgen -W "main all" -- "$cur"))
      return ;;
    --filter-from)
      COMPREPLY=($(compgen -f -- "$cur"))
      compopt -o filenames 2>/dev/null
      return ;;
    --exclude|--filter|--max-age|--min-age|--max-size|--min-size|--max-transfer|--stats|-j|--jobs|--transfers|--max-duration|--rpm|--bwlimit|--wait|--runs|--files|--project|--album|--base-url|--member|--model|--team|--settle|--rescan-interval|--poll-interval|--webhook-listen|--metrics-listen)
      return ;;  # a value of the user's
  esac

  # The sub-command (and team/shared's own) is the first word that is neither
  # an option nor an option's value.
  local i w cmd="" sub=""
  for ((i = 1; i < cword; i++)); do
    w=${words[i]}
    case $w in
      --config|--log-file|--ca-file) ((i++)) ;;
      -*) ;;
      *) if [[ -z $cmd ]]; then cmd=$w; elif [[ -z $sub ]]; then sub=$w; fi ;;
    esac
  done

  local opts=""
  local filters="--include --exclude --filter --filter-from --max-age --min-age --max-size --min-size --ignore-case"
  case $cmd in
    "") COMPREPLY=($(compgen -W "$commands $global" -- "$cur")); return ;;
    sync) opts="-n --dry-run -j --jobs --transfers --max-duration --max-transfer --stats --rpm --bwlimit $filters --fit --retry-rejected --allow-unapprove" ;;
    plan) opts="$filters" ;;
    push) opts="-0 --null -j --jobs --transfers --wait --fit" ;;
    status) opts="--runs --files" ;;
    verify) opts="--repair --remote" ;;
    init) opts="--root --project --album --base-url --force" ;;
    ignore) opts="--list --remove" ;;
    watch) opts="--settle --rescan-interval --poll-interval --webhook-listen --metrics-listen --fit" ;;
    pull) opts="--member --model --favorites --restore -n --dry-run -j --jobs --rpm --include --dest --bwlimit --stats" ;;
    team)
      case $sub in
        "") COMPREPLY=($(compgen -W "status invite revoke" -- "$cur")); return ;;
        invite) opts="--csv --team --dry-run" ;;
        revoke) opts="--dry-run" ;;
      esac ;;
    shared)
      if [[ -z $sub ]]; then COMPREPLY=($(compgen -W "init import" -- "$cur")); return; fi ;;
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts $global" -- "$cur"))
  elif [[ $cmd == push || $cmd == ignore ]]; then
    COMPREPLY=($(compgen -f -- "$cur"))  # photo paths
    compopt -o filenames 2>/dev/null
  fi
}
complete -F _shotsync shotsync
