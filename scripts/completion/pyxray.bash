# bash completion for pyxray                               -*- shell-script -*-
#
# Installed as share/bash-completion/completions/pyxray.  Nothing here lists
# commands or options: they come from the pyxray being completed, its
# `pyxray --help` (the commands) and `pyxray COMMAND --help` (each command's
# options and its first argument), read once per shell and per binary, so a
# new command or option completes without an edit here.
#
#   pyxray <TAB>                 the commands, --help, --version
#   pyxray stacks <TAB>          the PIDs of running Python processes (where
#                                the usage line says PID), else files
#   pyxray stacks --<TAB>        the options of `pyxray stacks --help`
#   pyxray census --sort <TAB>   a value list the help gives (bytes|count|retained);
#                                a FILE or DIR argument completes paths

# The help text of "$1" (a pyxray) for "$2" (empty: the main help), cached.
_pyxray_help()
{
	local key="${1}|${2}" text
	declare -gA _pyxray_help_cache 2> /dev/null || return
	if [[ -z ${_pyxray_help_cache[$key]+set} ]]; then
		if [[ -n $2 ]]; then
			text=$("$1" "$2" --help 2> /dev/null)
		else
			text=$("$1" --help 2> /dev/null)
		fi
		_pyxray_help_cache[$key]=$text
	fi
	printf '%s\n' "${_pyxray_help_cache[$key]}"
}

# PIDs of running Python processes: the executable's or the command's name
# starts with "python" (python3, python3.12, python3.12d...).
_pyxray_python_pids()
{
	local d pid exe comm
	for d in /proc/[0-9]*; do
		pid=${d#/proc/}
		exe=$(readlink "$d/exe" 2> /dev/null) || exe=""
		comm=""
		[[ -r $d/comm ]] && read -r comm < "$d/comm" 2> /dev/null
		case "${exe##*/}|$comm" in
		python*|*\|python*) printf '%s\n' "$pid" ;;
		esac
	done
}

# The tags of the help's option lines ("-v, --verbose", "--top N"): what
# comes before the gap of two or more spaces that starts the description.
_pyxray_option_tags()
{
	awk '/^  +-/ {
		sub(/^ +/, "")
		p = index($0, "  ")
		print (p ? substr($0, 1, p - 1) : $0)
	}'
}

_pyxray()
{
	local cur prev words cword
	if declare -F _init_completion > /dev/null; then
		_init_completion -n = || return
	else
		cur=${COMP_WORDS[COMP_CWORD]}
		prev=${COMP_WORDS[COMP_CWORD - 1]}
		words=("${COMP_WORDS[@]}")
		cword=$COMP_CWORD
	fi
	local bin=${words[0]} cmd="" i
	# The command: the first word after pyxray ("pyxray help CMD" too).
	for ((i = 1; i < cword; i++)); do
		case "${words[i]}" in
		-*) ;;
		help) ;;
		*) cmd=${words[i]}; break ;;
		esac
	done

	if [[ -z $cmd ]]; then
		local cmds
		cmds=$(_pyxray_help "$bin" "" | awk '
			/^Commands:$/ { on = 1; next }
			on && /^$/ { exit }
			on && /^  [a-z]/ { print $1 }')
		COMPREPLY=($(compgen -W "$cmds help --help --version" -- "$cur"))
		return
	fi

	local help
	help=$(_pyxray_help "$bin" "$cmd")

	# An option's value: the word after it in the help ("--top N",
	# "--sort bytes|count", "--save FILE.pxh").
	if [[ $prev == -* ]]; then
		local arg
		arg=$(printf '%s\n' "$help" | _pyxray_option_tags |
			awk -v o="$prev" '{
				n = split($0, w, /[ ,]+/)
				for (i = 1; i <= n; i++)
					if (w[i] == o) { print w[i + 1]; exit }
			}')
		case "$arg" in
		"" | -*) ;;	# a flag: fall through to the next word
		*"|"*)
			COMPREPLY=($(compgen -W "${arg//|/ }" -- "$cur"))
			return ;;
		*DIR*)
			COMPREPLY=($(compgen -d -- "$cur"))
			return ;;
		*FILE*)
			COMPREPLY=($(compgen -f -- "$cur"))
			return ;;
		*)
			COMPREPLY=()
			return ;;
		esac
	fi

	if [[ $cur == -* ]]; then
		local opts
		# Every -x and --long at the start of an option line (and after a
		# comma: "-v, --verbose"), with "--opt=" for those with a value.
		opts=$(printf '%s\n' "$help" | _pyxray_option_tags | awk '{
				n = split($0, w, /[ ,]+/)
				for (i = 1; i <= n; i++)
					if (w[i] ~ /^-/)
						print w[i]
			}')
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
		return
	fi

	# A positional argument: PIDs where the usage line says PID.
	if printf '%s\n' "$help" | grep -q "^Usage: pyxray $cmd PID"; then
		COMPREPLY=($(compgen -W "$(_pyxray_python_pids)" -- "$cur"))
		return
	fi
	COMPREPLY=($(compgen -f -- "$cur"))
} &&
	complete -F _pyxray pyxray
