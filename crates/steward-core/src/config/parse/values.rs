//! Checking single values. Each check reports what was wrong (with the span, a message and a
//! hint) and returns `None`, so that one bad value does not hide the others.

use super::*;
use crate::release::RELEASE_MARK;

/// Restarts per second above which a restart loop is hot: `check` warns when a program's
/// backoff and retry budget allow more, for good.
pub(super) const HOT_RESTART_RATE: f64 = 10.0;

impl Ctx<'_> {
    /// Whether the platform the config is for has `what` (with no platform named: yes).
    pub(super) fn platform_has(&self, what: fn(Platform) -> bool) -> bool {
        self.env.platform().is_none_or(what)
    }

    /// The platform's name for a hint, or "this OS".
    pub(super) fn platform_name(&self) -> &'static str {
        self.env.platform().map_or("this OS", Platform::name)
    }

    pub(super) fn error(&mut self, span: Span, message: impl Into<String>, hint: impl Into<String>) {
        self.diags.push(Diagnostic::at(self.file, self.src, span, message, Some(hint.into())));
    }

    /// A warning: shown, but the file stays valid.
    pub(super) fn warn(&mut self, span: Span, message: impl Into<String>, hint: impl Into<String>) {
        self.warnings.push(Diagnostic::at(self.file, self.src, span, message, Some(hint.into())).warning());
    }

    /// The errors and warnings found, by position.
    pub(super) fn finish(&mut self) -> Diagnostics {
        let mut diags = std::mem::take(&mut self.diags);
        diags.append(&mut self.warnings);
        diags.sort_by_key(|d| (d.line, d.col));
        Diagnostics(diags)
    }

    pub(super) fn unknown_key<'n>(
        &mut self,
        key: &Spanned<toml::de::DeString<'_>>,
        value: &Value<'_>,
        section: &str,
        known: impl Iterator<Item = &'n str> + Clone,
    ) {
        let name: &str = key.get_ref();
        let message = if !section.is_empty() {
            format!("unknown key `{name}` in [{section}]")
        } else if value.get_ref().is_table() {
            format!("unknown table `[{name}]`")
        } else {
            format!("unknown key `{name}` at the top level")
        };
        let hint = match suggest(name, known.clone()) {
            Some(s) => format!("did you mean `{s}`?"),
            None if section.is_empty() => {
                "the file has a [supervisor] table, [programs.NAME] tables, an [api] table, a [metrics] table and [[alerts]]"
                    .to_owned()
            }
            None => format!("the keys of [{section}] are: {}", join_quoted(known, "`")),
        };
        self.error(key.span(), message, hint);
    }

    pub(super) fn wrong_type(&mut self, f: &Field<'_, '_>, expected: &str) {
        self.error(
            f.span(),
            format!("`{}` must be {expected}, found {}", f.name, kind(f.value.get_ref())),
            format!("for example: `{}`", f.example),
        );
    }

    pub(super) fn table<'v, 'i>(&mut self, f: &Field<'v, 'i>) -> Option<&'v DeTable<'i>> {
        match f.value.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.wrong_type(f, "a table");
                None
            }
        }
    }

    pub(super) fn array<'v, 'i>(&mut self, f: &Field<'v, 'i>, expected: &str) -> Option<&'v DeArray<'i>> {
        match f.value.get_ref() {
            DeValue::Array(a) => Some(a),
            _ => {
                self.wrong_type(f, expected);
                None
            }
        }
    }

    /// A sub-table checked against its own key list.
    pub(super) fn section<T>(&mut self, f: &Field<'_, '_>, keys: &[Key<T>], draft: &mut T) {
        if let Some(table) = self.table(f) {
            walk(self, table, &f.table_path(), keys, draft);
        }
    }

    /// `[programs.NAME]` tables.
    pub(super) fn programs(&mut self, f: &Field<'_, '_>, programs: &mut BTreeMap<String, Box<ProgramDraft>>) {
        let Some(table) = self.table(f) else { return };
        for (key, value) in table.iter() {
            let name: &str = key.get_ref();
            let errors_before = self.diags.len();
            if let Err(why) = check_program_name(name) {
                self.error(
                    key.span(),
                    format!("invalid program name `{name}`: {why}"),
                    "use letters, digits, `_`, `-` and `.`, not starting with `.`; the name becomes a file name",
                );
            }
            let field = Field {
                section: "programs".to_owned(),
                name: name.to_owned(),
                example: "[programs.web]",
                value,
            };
            let Some(body) = self.table(&field) else { continue };
            let section = field.table_path();
            let mut instances = self.instances_of(body, &section);
            if let Some((_, n)) = self.scale.as_ref().filter(|(p, _)| p == name) {
                instances = instances.map(|_| *n);
            }
            let mut draft = ProgramDraft::new(name, key.span(), &self.dir);
            draft.group.instances = instances;
            self.instance = instances.map(|_| 0);
            if body.get_key_value("release").is_some() {
                self.release = instance::Release::Kept;
            }
            walk(self, body, &section, PROGRAM_KEYS, &mut draft);
            self.instance = None;
            self.check_program(&draft, errors_before);
            self.check_group(&draft);
            if let Some(n) = instances.filter(|_| self.diags.len() == errors_before) {
                draft.group.more = self.more_instances(body, &section, name, key.span(), n);
                self.check_release_instances(&draft);
            }
            self.release = instance::Release::Absent;
            programs.insert(name.to_owned(), Box::new(draft));
        }
    }

    /// Checks that need several keys of one program.
    pub(super) fn check_program(&mut self, d: &ProgramDraft, errors_before: usize) {
        if self.diags.len() == errors_before {
            self.check_restart_rate(d);
        }
        self.check_limits(d);
        self.check_release_command(d);
        let name = d.spec.name.clone();
        if d.spec.log.multiline.as_ref().is_some_and(|m| m.start.is_empty()) {
            self.error(
                d.name_span.clone(),
                format!("[programs.{name}.log] sets multiline_timeout or multiline_max_lines without multiline_start"),
                "add multiline_start = \"PATTERN\", the regular expression that begins a record, or remove them",
            );
        }
        if !d.has_command {
            self.error(
                d.name_span.clone(),
                format!("program `{name}` has no `command`"),
                format!("add the program to run, for example: `{}`", PROGRAM_KEYS[0].example),
            );
        }
        // Only compare durations that were read without mistakes.
        if self.diags.len() == errors_before && d.spec.restart_max_delay < d.spec.restart_delay {
            let (max, delay) = (
                units::format_duration(d.spec.restart_max_delay),
                units::format_duration(d.spec.restart_delay),
            );
            match d.restart_max_delay_span.clone() {
                Some(span) => self.error(
                    span,
                    format!("`restart_max_delay` ({max}) is shorter than `restart_delay` ({delay})"),
                    "make `restart_max_delay` at least as long as `restart_delay`",
                ),
                None => self.error(
                    d.restart_delay_span.clone().unwrap_or_else(|| d.name_span.clone()),
                    format!(
                        "`restart_delay` ({delay}) is longer than the default `restart_max_delay` ({max})"
                    ),
                    format!("also set `restart_max_delay` to at least \"{delay}\""),
                ),
            }
        }
    }

    /// Warns when the program could restart more than [`HOT_RESTART_RATE`] times a second
    /// for as long as it keeps failing (a hot loop: CPU, spawns and log lines without end).
    /// Only a `restart_delay` under 1 / that rate allows it (every restart waits at least
    /// that long), so the warning points there.
    fn check_restart_rate(&mut self, d: &ProgramDraft) {
        let Some(span) = d.restart_delay_span.clone() else { return };
        let rate = crate::fsm::Policy::from_spec(&d.spec).sustained_restart_rate();
        if rate.is_some_and(|r| r <= HOT_RESTART_RATE) {
            return;
        }
        let how_often = match rate {
            Some(r) if r <= 1000.0 => format!("up to {} times a second", r.ceil()),
            _ => "more than 1000 times a second".to_owned(),
        };
        let (delay, window) =
            (units::format_duration(d.spec.restart_delay), units::format_duration(d.spec.restart_window));
        let min_delay = units::format_duration(Duration::from_secs_f64(1.0 / HOT_RESTART_RATE));
        self.warn(
            span,
            format!(
                "program `{}` can restart {how_often} for as long as it keeps failing: `restart_delay` is {delay} \
                 and the retry budget ({} restarts per {window}) never runs out at that pace",
                d.spec.name, d.spec.max_restarts
            ),
            format!(
                "set `restart_delay` to at least \"{min_delay}\", or make `max_restarts` per `restart_window` \
                 at most {HOT_RESTART_RATE} a second (steward warns above that)"
            ),
        );
    }

    /// A string value, with `${...}` expanded.
    pub(super) fn string(&mut self, f: &Field<'_, '_>) -> Option<String> {
        match f.value.get_ref() {
            DeValue::String(s) => self.interpolate(f, s),
            _ => {
                self.wrong_type(f, "a string");
                None
            }
        }
    }

    pub(super) fn interpolate(&mut self, f: &Field<'_, '_>, raw: &str) -> Option<String> {
        let raw = match instance::expand(raw, self.instance, self.release) {
            Ok(text) => text,
            Err(errors) => {
                for e in errors {
                    let span = self.span_in_string(f.span(), raw, e.offset..e.offset + e.len);
                    self.error(span, format!("{} (in `{}`)", e.message, f.name), e.hint);
                }
                return None;
            }
        };
        let raw = &*raw;
        let env = self.env;
        match interp::expand(raw, &|name| env.var(name)) {
            Ok(v) if v.contains('\0') => {
                self.nul_error(f.span(), &f.name);
                None
            }
            // A variable's value is never a template: a `%{release}` from one would be
            // filled in by the runtime all the same.
            Ok(v)
                if self.release == instance::Release::Kept
                    && v.matches(RELEASE_MARK).count() > raw.matches(RELEASE_MARK).count() =>
            {
                self.error(
                    f.span(),
                    format!("a `${{...}}` variable in `{}` brings the text `%{{release}}` into a program with [release]", f.name),
                    "steward would replace it with the release's folder: change the variable's value",
                );
                None
            }
            Ok(v) => Some(v),
            Err(errors) => {
                for e in errors {
                    let span = self.span_in_string(f.span(), raw, e.offset..e.offset + e.len);
                    self.error(span, format!("{} (in `{}`)", e.message, f.name), e.hint);
                }
                None
            }
        }
    }

    /// A NUL character cannot reach the OS: it ends a C string, so an argument, an
    /// environment value or a path holding one cannot be passed on.
    pub(super) fn nul_error(&mut self, span: Span, name: &str) {
        self.error(
            span,
            format!("`{name}` contains a NUL character (\\u0000)"),
            "remove it: no program argument, environment value or path can hold one",
        );
    }

    /// Maps a byte range of a string's decoded value to the source, when the source text up to
    /// there is the same as the value (no escapes before it); otherwise the whole value.
    pub(super) fn span_in_string(&self, value_span: Span, decoded: &str, inner: Span) -> Span {
        let raw = &self.src[value_span.clone()];
        let delim = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
            3
        } else if raw.starts_with('"') || raw.starts_with('\'') {
            1
        } else {
            return value_span;
        };
        let mut body_start = value_span.start + delim;
        if delim == 3 {
            // A newline right after the opening delimiter is not part of the value.
            let after = &self.src[body_start..];
            body_start += if after.starts_with("\r\n") { 2 } else { usize::from(after.starts_with('\n')) };
        }
        let body = self.src.get(body_start..value_span.end.saturating_sub(delim)).unwrap_or("");
        if body.get(..inner.end).is_some() && body.get(..inner.end) == decoded.get(..inner.end) {
            body_start + inner.start..body_start + inner.end
        } else {
            value_span
        }
    }

    pub(super) fn bool(&mut self, f: &Field<'_, '_>) -> Option<bool> {
        match f.value.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(f, "a boolean");
                None
            }
        }
    }

    pub(super) fn integer(&mut self, f: &Field<'_, '_>, expected: &str) -> Option<i128> {
        match f.value.get_ref() {
            DeValue::Integer(i) => {
                let parsed = i128::from_str_radix(i.as_str(), i.radix()).ok();
                if parsed.is_none() {
                    self.error(
                        f.span(),
                        format!("`{}` is not a valid integer", f.name),
                        format!("for example: `{}`", f.example),
                    );
                }
                parsed
            }
            _ => {
                self.wrong_type(f, expected);
                None
            }
        }
    }

    pub(super) fn in_range<T: TryFrom<i128> + std::fmt::Display + Copy>(
        &mut self,
        f: &Field<'_, '_>,
        min: T,
        max: T,
    ) -> Option<T> {
        let n = self.integer(f, "an integer")?;
        let value = T::try_from(n).ok();
        if value.is_none() {
            self.error(
                f.span(),
                format!("`{}` must be between {min} and {max}, found {n}", f.name),
                format!("for example: `{}`", f.example),
            );
        }
        value
    }

    pub(super) fn u32(&mut self, f: &Field<'_, '_>) -> Option<u32> {
        self.in_range(f, u32::MIN, u32::MAX)
    }

    pub(super) fn duration(&mut self, f: &Field<'_, '_>) -> Option<Duration> {
        match f.value.get_ref() {
            DeValue::String(s) => {
                let text = self.interpolate(f, s)?;
                units::parse_duration(&text)
                    .map_err(|e| {
                        // Well formed, only too long: say how long it may be.
                        let hint = if humantime::parse_duration(text.trim()).is_ok() {
                            "durations go up to \"1y\" (365.25 days)"
                        } else {
                            "write a number with a unit, such as \"150ms\", \"10s\", \"5m\" or \"1h30m\""
                        };
                        self.error(f.span(), format!("`{}` is not a valid duration: {e}", f.name), hint)
                    })
                    .ok()
            }
            DeValue::Integer(i) => {
                self.error(
                    f.span(),
                    format!("`{}` must be a duration string such as \"10s\", found an integer", f.name),
                    format!("add a unit and quotes: `{} = \"{}s\"`", f.name, i.as_str()),
                );
                None
            }
            _ => {
                self.wrong_type(f, "a duration string such as \"10s\"");
                None
            }
        }
    }

    pub(super) fn size(&mut self, f: &Field<'_, '_>) -> Option<u64> {
        match f.value.get_ref() {
            DeValue::String(s) => {
                let text = self.interpolate(f, s)?;
                units::parse_size(&text)
                    .map_err(|e| {
                        self.error(
                            f.span(),
                            format!("`{}` is not a valid size: {e}", f.name),
                            "write a number of bytes or a size with a unit, such as \"500KB\", \"50MB\" or \"1GiB\"",
                        )
                    })
                    .ok()
            }
            DeValue::Integer(_) => self.in_range(f, u64::MIN, u64::MAX),
            _ => {
                self.wrong_type(f, "a size such as \"50MB\" or a number of bytes");
                None
            }
        }
    }

    /// `max_size`: 0 (no size limit) or at least [`MIN_LOG_SIZE`]. A smaller size would
    /// rotate on nearly every line, and a bare number is bytes, which is rarely what was
    /// meant.
    pub(super) fn check_max_size(&mut self, f: &Field<'_, '_>, size: u64) {
        if size == 0 || size >= MIN_LOG_SIZE {
            return;
        }
        let hint = match f.value.get_ref() {
            DeValue::Integer(i) => format!(
                "`{} = {}` is {size} bytes; did you mean \"{}MB\"? (0 turns size rotation off)",
                f.name,
                i.as_str(),
                i.as_str()
            ),
            _ => "write at least \"4KB\", or 0 to turn size rotation off".to_owned(),
        };
        self.error(
            f.span(),
            format!("`{}` is {size} bytes, less than the smallest log file steward rotates ({MIN_LOG_SIZE} bytes)", f.name),
            hint,
        );
    }

    /// The Unix sockets steward binds under `state_dir` (the API's `steward.sock`, and
    /// `notify/NAME.sock` for each `ready = "notify"` program) must fit the platform's
    /// socket address; checked only when the platform is known.
    pub(super) fn check_socket_paths(&mut self, draft: &DocumentDraft) {
        let Some(max) = self.env.platform().and_then(Platform::max_socket_path) else { return };
        let sup = &draft.supervisor;
        let state_dir = sup.state_dir.clone().unwrap_or_else(|| self.dir.join(defaults::STATE_DIR));
        let span = sup.state_dir_span.clone().unwrap_or(0..0);
        let which = if sup.state_dir_span.is_some() {
            "`state_dir`"
        } else {
            "the default `state_dir` (next to the config file)"
        };
        let hint = format!(
            "set a shorter [supervisor] state_dir: socket paths on {} have at most {max} bytes",
            self.platform_name()
        );
        let api = state_dir.join("steward.sock");
        if api.as_os_str().len() > max {
            let message = format!(
                "{which} makes the API socket path {} {} bytes long, too long for a socket",
                api.display(),
                api.as_os_str().len()
            );
            self.error(span.clone(), message, hint.clone());
            return;
        }
        for (name, program) in &draft.programs {
            if program.spec.ready != Readiness::Notify {
                continue;
            }
            let notify = state_dir.join("notify").join(format!("{name}.sock"));
            if notify.as_os_str().len() > max {
                let message = format!(
                    "program `{name}` has `ready = \"notify\"`, and its notify socket path {} is {} bytes long, too long for a socket",
                    notify.display(),
                    notify.as_os_str().len()
                );
                self.error(
                    program.name_span.clone(),
                    message,
                    format!("{hint}; or give the program a shorter name"),
                );
            }
        }
    }

    /// One of a fixed set of names (an enum of the model).
    pub(super) fn choice<E>(
        &mut self,
        f: &Field<'_, '_>,
        from_name: fn(&str) -> Option<E>,
        names: &[&str],
    ) -> Option<E> {
        let text = self.string(f)?;
        let value = from_name(&text);
        if value.is_none() {
            let hint = match suggest(&text, names.iter().copied()) {
                Some(s) => format!("did you mean \"{s}\"?"),
                None => format!("for example: `{}`", f.example),
            };
            self.error(
                f.span(),
                format!(
                    "`{}` must be one of {}, found \"{text}\"",
                    f.name,
                    join_quoted(names.iter().copied(), "\"")
                ),
                hint,
            );
        }
        value
    }

    /// A path, resolved from the config file's folder when relative.
    pub(super) fn path(&mut self, f: &Field<'_, '_>) -> Option<PathBuf> {
        let text = self.string(f)?;
        if self.release == instance::Release::Kept && text.contains(RELEASE_MARK) {
            self.error(
                f.span(),
                format!("`{}` cannot use `%{{release}}`: steward reads it when it loads the config, before a release is chosen", f.name),
                format!("give `{}` a path outside the release", f.name),
            );
            return None;
        }
        self.path_of(f, text)
    }

    /// `text`, a path, resolved from the config file's folder when relative.
    pub(super) fn path_of(&mut self, f: &Field<'_, '_>, text: String) -> Option<PathBuf> {
        if text.is_empty() {
            self.error(f.span(), format!("`{}` is empty", f.name), format!("for example: `{}`", f.example));
            return None;
        }
        Some(self.dir.join(text))
    }

    /// A path key whose file is read at load (`env_file`, `token_file`): its path and text,
    /// or an error at the key saying why it cannot be read.
    pub(super) fn file_text(&mut self, f: &Field<'_, '_>) -> Option<(PathBuf, String)> {
        let path = self.path(f)?;
        match self.env.read_file(&path) {
            Ok(text) => Some((path, text)),
            Err(e) => {
                self.error(
                    f.span(),
                    format!("cannot read {} `{}`: {e}", f.name, path.display()),
                    "create the file or fix the path; a relative path is resolved from the config file's folder",
                );
                None
            }
        }
    }

    /// `command`: an array of strings, or one string split like a POSIX shell splits words.
    pub(super) fn command(&mut self, f: &Field<'_, '_>) -> Option<Vec<String>> {
        let empty_hint = format!("give the program to run and its arguments, for example: `{}`", f.example);
        match f.value.get_ref() {
            DeValue::String(s) => {
                let text = self.interpolate(f, s)?;
                match shell_words::split(&text) {
                    Ok(argv) if argv.is_empty() => {
                        self.error(f.span(), format!("`{}` is empty", f.name), empty_hint);
                        None
                    }
                    Ok(argv) => Some(argv),
                    Err(_) => {
                        self.error(
                            f.span(),
                            format!("`{}` has an unbalanced quote", f.name),
                            "close the quote, or write the command as an array: `command = [\"sh\", \"-c\", \"echo 'hi'\"]`",
                        );
                        None
                    }
                }
            }
            DeValue::Array(items) => {
                if items.is_empty() {
                    self.error(f.span(), format!("`{}` is empty", f.name), empty_hint);
                    return None;
                }
                let argv: Vec<Option<String>> =
                    items.iter().enumerate().map(|(i, item)| self.string(&f.element(i, item))).collect();
                let argv: Vec<String> = argv.into_iter().collect::<Option<_>>()?;
                if argv[0].is_empty() {
                    self.error(
                        items[0].span(),
                        format!("`{}[0]`, the program to run, is empty", f.name),
                        empty_hint,
                    );
                    return None;
                }
                Some(argv)
            }
            _ => {
                self.wrong_type(f, "an array of strings or a string");
                None
            }
        }
    }

    /// `env`: a table of strings.
    pub(super) fn env_table(&mut self, f: &Field<'_, '_>) -> Option<BTreeMap<String, String>> {
        let table = self.table(f)?;
        let mut vars = BTreeMap::new();
        let mut ok = true;
        for (key, value) in table.iter() {
            let name: &str = key.get_ref();
            if name.is_empty() || name.contains(['=', '\0']) {
                self.error(
                    key.span(),
                    format!("`{name}` cannot be an environment variable name"),
                    "names must be non-empty and cannot contain `=`",
                );
                ok = false;
                continue;
            }
            let entry = f.entry(name, value);
            if let DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_) = value.get_ref() {
                // The value is not repeated in the hint: it may be a secret (a PIN).
                self.error(
                    value.span(),
                    format!("`{}` must be a string, found {}", entry.name, kind(value.get_ref())),
                    format!("quote the value: `{name} = \"...\"`"),
                );
                ok = false;
                continue;
            }
            match self.string(&entry) {
                Some(v) => {
                    vars.insert(name.to_owned(), v);
                }
                None => ok = false,
            }
        }
        ok.then_some(vars)
    }

    /// `env_file`: read through [`Env::read_file`] and parsed as dotenv. A line that does not
    /// parse is reported by its number and key name, never its text: env files hold secrets,
    /// and this message reaches `steward check`, steward's log and API callers.
    pub(super) fn env_file(&mut self, f: &Field<'_, '_>) -> Option<BTreeMap<String, String>> {
        let (path, text) = self.file_text(f)?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let mut vars = BTreeMap::new();
        for item in dotenvy::from_read_iter(text.as_bytes()) {
            match item {
                Ok((k, v)) if v.contains('\0') => {
                    self.nul_error(f.span(), &format!("{} `{}`: {k}", f.name, path.display()));
                    return None;
                }
                Ok((k, v)) => {
                    vars.insert(k, v);
                }
                Err(dotenvy::Error::LineParse(..)) => {
                    let (message, hint) = env_file_error(&path, text);
                    self.error(f.span(), message, hint);
                    return None;
                }
                Err(other) => {
                    self.error(
                        f.span(),
                        format!("env_file `{}`: {other}", path.display()),
                        "each line must be `NAME=value`; quote values that contain spaces or `#`",
                    );
                    return None;
                }
            }
        }
        Some(vars)
    }
    /// `success_exit_codes`: integers in the i32 range.
    pub(super) fn exit_codes(&mut self, f: &Field<'_, '_>) -> Option<Vec<i32>> {
        let items = self.array(f, "an array of integers")?;
        let codes: Vec<Option<i32>> = items
            .iter()
            .enumerate()
            .map(|(i, item)| self.in_range(&f.element(i, item), i32::MIN, i32::MAX))
            .collect();
        codes.into_iter().collect()
    }

    /// `depends_on`: names with their spans; checked against the programs later.
    pub(super) fn depends_on(&mut self, f: &Field<'_, '_>) -> Option<Vec<(String, Span)>> {
        let items = self.array(f, "an array of program names")?;
        let names: Vec<Option<(String, Span)>> = items
            .iter()
            .enumerate()
            .map(|(i, item)| self.string(&f.element(i, item)).map(|s| (s, item.span())))
            .collect();
        names.into_iter().collect()
    }
}

/// The smallest `max_size` other than 0: "4KB".
pub(super) const MIN_LOG_SIZE: u64 = 4000;

/// The most rotated files a log may keep: each is a file in the log folder, and more than
/// this many is a mistake (a number meant as a size or a time, say) rather than a plan.
pub(super) const MAX_KEEP: u32 = 10_000;

/// The longest program name: its longest file, a compressed rotated log being written
/// (`NAME.err.log.20261122T031500.123Z.gz.tmp`), must fit the 255 bytes a file name may
/// have on Linux, macOS and Windows alike.
pub(super) const MAX_PROGRAM_NAME: usize = 255 - ".err.log.20261122T031500.123Z.gz.tmp".len();

/// What is wrong with an env file that dotenvy refused: the first line that does not parse,
/// by number, and its key when the line has one (`NAME=...`). Neither the line nor the value
/// is quoted. dotenvy reports only the text it choked on (sometimes just the value), so the
/// line is found again here: each line is parsed alone, joined with the lines after it
/// while that is what closes a quote (a value over several lines).
fn env_file_error(path: &Path, text: &str) -> (String, &'static str) {
    let parses = |chunk: &str| dotenvy::from_read_iter(chunk.as_bytes()).all(|r| r.is_ok());
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut bad = None;
    let mut i = 0;
    'lines: while i < lines.len() {
        if parses(lines[i]) {
            i += 1;
            continue;
        }
        if lines[i].contains(['"', '\'']) {
            for j in i + 1..lines.len() {
                if parses(&lines[i..=j].concat()) {
                    i = j + 1;
                    continue 'lines;
                }
            }
        }
        bad = Some(i);
        break;
    }
    let file = path.display();
    let Some(i) = bad else {
        return (
            format!("env_file `{file}` cannot be parsed"),
            "each line must be `NAME=value`; quote values that contain spaces or `#`, and close every quote",
        );
    };
    let number = i + 1;
    match env_key(lines[i]) {
        Some(key) => (
            format!("env_file `{file}` line {number}: the value of `{key}` cannot be parsed (not shown: it may be a secret)"),
            "quote a value that contains spaces, `#` or `\\` (`NAME=\"a b\"`), and close every quote",
        ),
        None => (
            format!("env_file `{file}` line {number} is not `NAME=value` (not shown: it may hold a secret)"),
            "each line must be `NAME=value`, with a name of letters, digits and `_`; comments start with `#`",
        ),
    }
}

/// The name of a `NAME=value` (or `export NAME=value`) line, if it has one. Text without the
/// `=` is not taken for a name: it may be a secret pasted on a line of its own.
fn env_key(line: &str) -> Option<&str> {
    let line = line.trim_start();
    let line = line
        .strip_prefix("export")
        .filter(|rest| rest.starts_with([' ', '\t']))
        .map_or(line, str::trim_start);
    let starts_well = line.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
    let end = line.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.')).unwrap_or(line.len());
    let (key, rest) = line.split_at(end);
    (starts_well && rest.trim_start().starts_with('=')).then_some(key)
}

/// Program names become file names (logs, state), on every OS: `Err` says why `name` cannot
/// be one.
pub fn check_program_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".to_owned());
    }
    if name.len() > MAX_PROGRAM_NAME {
        return Err(format!(
            "it is {} characters long; its log files need a name of at most {MAX_PROGRAM_NAME}",
            name.len()
        ));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))) {
        return Err(format!("{c:?} is not allowed"));
    }
    if name.starts_with('.') {
        return Err("it starts with `.`".to_owned());
    }
    if name.ends_with('.') {
        return Err("it ends with `.`, which Windows drops from file names".to_owned());
    }
    let stem = name.split('.').next().unwrap_or(name).to_ascii_uppercase();
    let reserved = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || (stem.len() == 4
            && (stem.starts_with("COM") || stem.starts_with("LPT"))
            && matches!(stem.as_bytes()[3], b'1'..=b'9'));
    if reserved {
        return Err(format!("`{stem}` is a reserved device name on Windows"));
    }
    Ok(())
}

/// "a string", "an integer", ... for messages.
pub(super) fn kind(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

pub(super) fn join_quoted<'n>(names: impl Iterator<Item = &'n str>, quote: &str) -> String {
    names.map(|n| format!("{quote}{n}{quote}")).collect::<Vec<_>>().join(", ")
}
