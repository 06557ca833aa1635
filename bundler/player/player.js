/* Offline story player (DESIGN §5). Plain ES2020, no dependencies.
 *
 * The bundle's manifest is embedded in #story-manifest as JSON. Everything
 * taken from it (titles, descriptions, prompts, labels, cue names) reaches the
 * page through textContent or DOM properties only, never as HTML.
 *
 * Flow: start screen -> scenelet -> shots (key frame, lead-in, narration,
 * pause) -> next: linear (on its own) | branch (choice overlay) | terminal |
 * incomplete. Every wait goes through one pausable clock so that pause/resume
 * keeps the remaining time, and every step carries an epoch token so that a
 * late media event from an earlier shot can never move the story.
 */
(() => {
  'use strict';

  /** All pacing in one place. `?speed=N` divides every "scaled" wait. */
  const TIMING = Object.freeze({
    leadInMs: 700, // key frame on screen before its narration starts
    afterNarrationMs: 900, // breath after a narration before the next shot
    noNarrationHoldMs: 4000, // how long a shot without (working) narration stays up
    branchNarrationDelayMs: 600, // choice overlay settles before the prompt is read
    musicFadeMs: 1600, // cross-fade between cues, and fade-out at the end
    musicFadeStepMs: 40, // volume ramp granularity (not scaled)
    // Safety nets for narration that neither plays nor fails (real time, not
    // scaled: they measure media, not pacing).
    narrationLoadTimeoutMs: 10000,
    narrationEndGraceMs: 2500,
  });
  const MUSIC_VOLUME = 0.32;
  const NARRATION_VOLUME = 1;
  const MAX_EVENTS = 1000;

  const speed = readSpeed();
  const $ = (id) => document.getElementById(id);
  const ui = {
    app: $('app'),
    backdrop: $('backdrop'),
    frames: [$('frame-a'), $('frame-b')],
    placeholder: $('placeholder'),
    topbarTitle: $('topbar-title'),
    caption: $('caption'),
    cue: $('cue'),
    pausedBadge: $('paused-badge'),
    startScreen: $('start-screen'),
    startTitle: $('start-title'),
    startButton: $('start-button'),
    choiceScreen: $('choice-screen'),
    choicePrompt: $('choice-prompt'),
    choiceList: $('choice-list'),
    terminalScreen: $('terminal-screen'),
    restartButton: $('restart-button'),
    incompleteScreen: $('incomplete-screen'),
    incompleteBack: $('incomplete-back'),
    errorScreen: $('error-screen'),
    errorText: $('error-text'),
    controls: $('controls'),
    pauseButton: $('pause-button'),
    pauseLabel: $('pause-label'),
    iconPause: $('icon-pause'),
    iconPlay: $('icon-play'),
    captionsButton: $('captions-button'),
    homeButton: $('home-button'),
  };

  const state = {
    screen: 'start', // start | playing | choice | terminal | incomplete | error
    sceneletId: null,
    shotPos: -1, // position in the scenelet's shots array
    phase: null, // lead-in | narration | after | hold | choice | null
    paused: false,
    captions: true,
    image: 'none', // loading | loaded | error | none
    imagePath: null,
    choices: [], // [{sceneletId, label}] offered on the choice screen
  };
  const events = [];
  let epoch = 0; // bumped whenever the current step is abandoned
  let story = null;

  function note(type, detail) {
    events.push(Object.assign({ type, t: Math.round(performance.now()) }, detail || {}));
    if (events.length > MAX_EVENTS) events.shift();
  }

  function readSpeed() {
    const raw = new URLSearchParams(window.location.search).get('speed');
    const value = raw === null ? 1 : Number(raw);
    return Number.isFinite(value) && value > 0 ? Math.min(value, 1000) : 1;
  }

  const scaled = (ms) => ms / speed;

  // ---------------------------------------------------------------- story data

  const text = (value) => (typeof value === 'string' ? value.trim() : '');
  const path = (value) => (typeof value === 'string' && value.trim() !== '' ? value : null);

  /** Normalises the manifest into lookups; tolerant, since bundles can be work in progress. */
  function loadStory() {
    const node = $('story-manifest');
    const manifest = JSON.parse(node ? node.textContent : '');
    if (!manifest || typeof manifest !== 'object' || !Array.isArray(manifest.scenelets)) {
      throw new Error('The story data has no scenelets.');
    }
    const byId = new Map();
    for (const raw of manifest.scenelets) {
      if (!raw || typeof raw.id !== 'string') continue;
      const shots = (Array.isArray(raw.shots) ? raw.shots : [])
        .filter((shot) => shot && (path(shot.imagePath) || path(shot.audioPath)))
        .map((shot) => ({
          shotIndex: shot.shotIndex,
          imagePath: path(shot.imagePath),
          audioPath: path(shot.audioPath),
        }));
      byId.set(raw.id, {
        id: raw.id,
        label: text(raw.label),
        description: text(raw.description),
        shots,
        next: raw.next && typeof raw.next === 'object' ? raw.next : { type: 'incomplete' },
        branchAudioPath: path(raw.branchAudioPath),
      });
    }
    const rootId = typeof manifest.rootSceneletId === 'string' ? manifest.rootSceneletId : null;
    if (!rootId || !byId.has(rootId)) throw new Error('The story data has no opening scene.');

    const music = manifest.music && typeof manifest.music === 'object' ? manifest.music : {};
    const cuePaths = new Map();
    for (const cue of Array.isArray(music.cues) ? music.cues : []) {
      // the first cue of a name wins, like the first cue to claim a scenelet
      if (cue && typeof cue.cueName === 'string' && path(cue.audioPath) && !cuePaths.has(cue.cueName)) {
        cuePaths.set(cue.cueName, cue.audioPath);
      }
    }
    const cueMap = music.sceneletCueMap && typeof music.sceneletCueMap === 'object' ? music.sceneletCueMap : {};
    const metadata = manifest.metadata && typeof manifest.metadata === 'object' ? manifest.metadata : {};
    return {
      title: text(metadata.title) || 'Untitled story',
      rootId,
      byId,
      cueFor: (id) => (Object.prototype.hasOwnProperty.call(cueMap, id) && typeof cueMap[id] === 'string' ? cueMap[id] : null),
      cuePaths,
    };
  }

  function firstImage(sceneletId) {
    const scenelet = story.byId.get(sceneletId);
    const shot = scenelet && scenelet.shots.find((s) => s.imagePath);
    return shot ? shot.imagePath : null;
  }

  // ------------------------------------------------------------ pausable clock

  /** setTimeout with pause/resume that keeps the remaining time. */
  const clock = {
    timers: new Set(),
    paused: false,
    after(ms, fn, { isScaled = true } = {}) {
      const timer = { remaining: isScaled ? scaled(ms) : ms, fn, handle: null, startedAt: 0 };
      this.timers.add(timer);
      if (!this.paused) this.arm(timer);
      return timer;
    },
    arm(timer) {
      timer.startedAt = performance.now();
      timer.handle = setTimeout(() => {
        this.timers.delete(timer);
        timer.fn();
      }, Math.max(0, timer.remaining));
    },
    cancel(timer) {
      if (!timer) return;
      clearTimeout(timer.handle);
      this.timers.delete(timer);
    },
    pause() {
      this.paused = true;
      for (const timer of this.timers) {
        clearTimeout(timer.handle);
        timer.remaining -= performance.now() - timer.startedAt;
      }
    },
    resume() {
      this.paused = false;
      for (const timer of this.timers) this.arm(timer);
    },
    clear() {
      for (const timer of this.timers) clearTimeout(timer.handle);
      this.timers.clear();
    },
  };

  // -------------------------------------------------------------------- images

  let frontFrame = 0;
  let imageToken = 0;

  /** Cross-fades to a key frame; a missing or broken image shows the placeholder. */
  function showImage(imagePath) {
    const token = ++imageToken;
    state.imagePath = imagePath;
    if (!imagePath) {
      showPlaceholder('none');
      return;
    }
    state.image = 'loading';
    const incoming = ui.frames[1 - frontFrame];
    incoming.onload = () => {
      if (token !== imageToken) return;
      const outgoing = ui.frames[frontFrame];
      incoming.classList.remove('is-visible');
      void incoming.offsetWidth; // restart the push-in animation
      incoming.classList.add('is-visible');
      outgoing.classList.remove('is-visible');
      frontFrame = 1 - frontFrame;
      ui.placeholder.hidden = true;
      ui.backdrop.src = imagePath;
      ui.backdrop.classList.add('is-visible');
      state.image = 'loaded';
    };
    incoming.onerror = () => {
      if (token !== imageToken) return;
      note('image-error', { path: imagePath });
      showPlaceholder('error');
    };
    if (incoming.getAttribute('src') === imagePath && incoming.complete) {
      // same file again: browsers need not fire load/error a second time
      if (incoming.naturalWidth > 0) incoming.onload();
      else incoming.onerror();
    } else {
      incoming.src = imagePath;
    }
  }

  function showPlaceholder(reason) {
    state.image = reason;
    for (const frame of ui.frames) frame.classList.remove('is-visible');
    ui.backdrop.classList.remove('is-visible');
    ui.placeholder.hidden = false;
  }

  function preloadImage(imagePath) {
    if (imagePath) new Image().src = imagePath;
  }

  // --------------------------------------------------------------------- music

  /** Background music: one cue at a time, cross-faded, continuous across scenelets sharing a cue. */
  const music = {
    wanted: null, // cue the story asks for now (null = silence)
    current: null, // {cue, el, fade, released} audible or paused
    outgoing: new Set(),
    failed: new Set(),

    setCue(cue) {
      if (cue === this.wanted) return; // same cue: keep playing without a restart
      this.wanted = cue;
      const previous = this.current;
      this.current = null;
      if (previous) {
        this.outgoing.add(previous);
        this.fade(previous, 0, () => this.release(previous));
      }
      this.showName(null);
      if (cue === null || this.failed.has(cue)) return;
      const audioPath = story.cuePaths.get(cue);
      if (!audioPath) return;
      const entry = { cue, el: new Audio(), fade: null, released: false };
      entry.el.loop = true;
      entry.el.preload = 'auto';
      entry.el.volume = 0;
      entry.el.addEventListener('error', () => this.fail(entry));
      entry.el.src = audioPath;
      this.current = entry;
      note('music', { cue });
      this.showName(cue);
      if (state.paused) {
        entry.el.volume = MUSIC_VOLUME; // starts at full level on resume
      } else {
        this.play(entry);
        this.fade(entry, MUSIC_VOLUME);
      }
    },

    play(entry) {
      const attempt = entry.el.play();
      if (attempt) {
        attempt.catch(() => {
          // a pause() before play() settled is not a failure; resume retries
          if (!entry.released && !state.paused) this.fail(entry);
        });
      }
    },

    /** A cue that cannot play is skipped silently for the rest of the session. */
    fail(entry) {
      if (entry.released) return;
      if (!this.failed.has(entry.cue)) note('music-failed', { cue: entry.cue });
      this.failed.add(entry.cue);
      if (this.current === entry) {
        this.current = null;
        this.showName(null);
      }
      this.release(entry);
    },

    fade(entry, target, done) {
      clearInterval(entry.fade);
      const el = entry.el;
      const steps = Math.round(scaled(TIMING.musicFadeMs) / TIMING.musicFadeStepMs);
      if (steps < 1) {
        el.volume = target;
        if (done) done();
        return;
      }
      const from = el.volume;
      let step = 0;
      entry.fade = setInterval(() => {
        step += 1;
        el.volume = Math.min(1, Math.max(0, from + ((target - from) * step) / steps));
        if (step >= steps) {
          clearInterval(entry.fade);
          entry.fade = null;
          if (done) done();
        }
      }, TIMING.musicFadeStepMs);
    },

    release(entry) {
      if (entry.released) return;
      entry.released = true;
      clearInterval(entry.fade);
      this.outgoing.delete(entry);
      entry.el.pause();
      entry.el.removeAttribute('src');
      entry.el.load(); // drops the decoder and the file handle
    },

    pause() {
      // fades would run on while paused: finish them now
      for (const entry of [...this.outgoing]) this.release(entry);
      if (this.current) {
        clearInterval(this.current.fade);
        this.current.el.volume = MUSIC_VOLUME;
        this.current.el.pause();
      }
    },

    resume() {
      if (this.current) this.play(this.current);
    },

    /** Stops everything at once (used when leaving to the title screen). */
    stopNow() {
      this.wanted = null;
      for (const entry of [...this.outgoing]) this.release(entry);
      if (this.current) this.release(this.current);
      this.current = null;
      this.showName(null);
    },

    showName(cue) {
      ui.cue.textContent = cue || '';
      ui.cue.hidden = !cue;
    },

    playing() {
      return Boolean(this.current && !this.current.el.paused && !this.current.released);
    },
  };

  // ----------------------------------------------------------------- narration

  let narration = null; // {el, token, settled, stop()}
  let branchNarration = null;

  /**
   * Plays one narration clip; calls onEnd when it finishes, onFail when it
   * cannot play (missing, broken, rejected play(), or stuck). Exactly one of
   * the two is called, and never for a stale token.
   */
  function playNarration(audioPath, token, onEnd, onFail) {
    const el = new Audio();
    el.preload = 'auto';
    el.volume = NARRATION_VOLUME;
    const clip = { el, settled: false, watchdog: null };
    const settle = (callback, reason) => {
      if (clip.settled || token !== epoch) return;
      clip.settled = true;
      clock.cancel(clip.watchdog);
      callback(reason);
    };
    const watch = (ms) => {
      clock.cancel(clip.watchdog);
      clip.watchdog = clock.after(ms, () => settle(onFail, 'stalled'), { isScaled: false });
    };
    clip.play = () => {
      const attempt = el.play();
      if (attempt) {
        attempt.catch((err) => {
          // pausing before play() settles rejects it; resume will try again
          if (!state.paused) settle(onFail, `play-rejected:${err && err.name}`);
        });
      }
    };
    clip.stop = () => {
      clip.settled = true;
      clock.cancel(clip.watchdog);
      el.pause();
      el.removeAttribute('src');
      el.load();
    };
    el.addEventListener('ended', () => settle(onEnd));
    el.addEventListener('error', () => settle(onFail, 'error'));
    el.addEventListener('loadedmetadata', () => {
      if (!clip.settled && Number.isFinite(el.duration)) {
        watch((el.duration - el.currentTime) * 1000 + TIMING.narrationEndGraceMs);
      }
    });
    watch(TIMING.narrationLoadTimeoutMs);
    el.src = audioPath;
    if (!state.paused) clip.play();
    return clip;
  }

  function stopNarration() {
    if (narration) narration.stop();
    narration = null;
  }

  function stopBranchNarration() {
    if (branchNarration) {
      branchNarration.pause();
      branchNarration.removeAttribute('src');
      branchNarration.load();
    }
    branchNarration = null;
  }

  // ----------------------------------------------------------------- the story

  /** Abandons the current step: timers, narration and late callbacks. */
  function abandonStep() {
    epoch += 1;
    clock.clear();
    stopNarration();
    stopBranchNarration();
  }

  function startStory() {
    if (state.screen !== 'start') return;
    note('start');
    enterScenelet(story.rootId);
  }

  function enterScenelet(sceneletId) {
    abandonStep();
    const scenelet = story.byId.get(sceneletId);
    if (!scenelet) {
      showEnd('incomplete'); // a dangling reference is treated as an unwritten path
      return;
    }
    state.sceneletId = sceneletId;
    setScreen('playing');
    music.setCue(story.cueFor(sceneletId));
    ui.caption.textContent = scenelet.description;
    note('scenelet', { sceneletId, label: scenelet.label });
    if (scenelet.shots.length === 0) finishScenelet(scenelet);
    else playShot(scenelet, 0);
  }

  function playShot(scenelet, pos) {
    abandonStep();
    const token = epoch;
    const shot = scenelet.shots[pos];
    state.shotPos = pos;
    state.phase = 'lead-in';
    showImage(shot.imagePath);
    const following = scenelet.shots[pos + 1];
    if (following) preloadImage(following.imagePath);
    else if (scenelet.next.type === 'branch') branchChoices(scenelet).forEach((c) => preloadImage(firstImage(c.sceneletId)));
    note('shot', { sceneletId: scenelet.id, shotIndex: shot.shotIndex, imagePath: shot.imagePath, audioPath: shot.audioPath });
    clock.after(TIMING.leadInMs, () => beginNarration(scenelet, pos, token));
  }

  function beginNarration(scenelet, pos, token) {
    if (token !== epoch) return;
    const shot = scenelet.shots[pos];
    const advance = () => {
      if (token !== epoch) return;
      if (pos + 1 < scenelet.shots.length) playShot(scenelet, pos + 1);
      else finishScenelet(scenelet);
    };
    const hold = () => {
      state.phase = 'hold';
      clock.after(TIMING.noNarrationHoldMs, advance);
    };
    if (!shot.audioPath) {
      note('narration-none', { sceneletId: scenelet.id, shotIndex: shot.shotIndex });
      hold();
      return;
    }
    state.phase = 'narration';
    note('narration-start', { sceneletId: scenelet.id, shotIndex: shot.shotIndex });
    narration = playNarration(
      shot.audioPath,
      token,
      () => {
        note('narration-end', { sceneletId: scenelet.id, shotIndex: shot.shotIndex });
        state.phase = 'after';
        clock.after(TIMING.afterNarrationMs, advance);
      },
      (reason) => {
        // missing or broken narration never stops the story: hold like a silent shot
        note('narration-skipped', { sceneletId: scenelet.id, shotIndex: shot.shotIndex, reason });
        hold();
      },
    );
  }

  /** Choices whose target is in the bundle, in manifest (script) order. */
  function branchChoices(scenelet) {
    const choices = Array.isArray(scenelet.next.choices) ? scenelet.next.choices : [];
    return choices.filter((c) => c && story.byId.has(c.sceneletId));
  }

  function finishScenelet(scenelet) {
    const next = scenelet.next;
    if (next.type === 'linear') {
      enterScenelet(next.sceneletId);
    } else if (next.type === 'branch' && branchChoices(scenelet).length > 0) {
      showChoices(scenelet);
    } else if (next.type === 'terminal') {
      showEnd('terminal');
    } else {
      showEnd('incomplete');
    }
  }

  function showChoices(scenelet) {
    abandonStep();
    const token = epoch;
    const choices = branchChoices(scenelet);
    state.choices = choices.map((c) => ({ sceneletId: c.sceneletId, label: text(c.label) }));
    state.phase = 'choice';
    ui.choicePrompt.textContent = text(scenelet.next.choicePrompt);
    ui.choiceList.replaceChildren(...choices.map(renderChoice));
    ui.choiceList.dataset.count = String(choices.length);
    setScreen('choice');
    const first = ui.choiceList.querySelector('button');
    if (first) first.focus();
    note('choice', { sceneletId: scenelet.id, choices: state.choices });
    if (scenelet.branchAudioPath) {
      clock.after(TIMING.branchNarrationDelayMs, () => {
        if (token !== epoch) return;
        // the prompt narration is a courtesy: errors are ignored, nothing waits on it
        branchNarration = new Audio(scenelet.branchAudioPath);
        branchNarration.volume = NARRATION_VOLUME;
        note('branch-narration', { sceneletId: scenelet.id });
        if (!state.paused) branchNarration.play().catch(() => {});
      });
    }
  }

  function renderChoice(choice, index) {
    const item = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'choice';
    if (index < 9) button.setAttribute('aria-keyshortcuts', String(index + 1));
    const thumb = document.createElement('span');
    thumb.className = 'choice__thumb';
    const imagePath = firstImage(choice.sceneletId);
    if (imagePath) {
      const img = document.createElement('img');
      img.alt = '';
      img.decoding = 'async';
      img.addEventListener('error', () => {
        img.remove();
        thumb.classList.add('is-missing');
      });
      img.src = imagePath;
      thumb.append(img);
    } else {
      thumb.classList.add('is-missing');
    }
    const key = document.createElement('span');
    key.className = 'choice__key';
    key.setAttribute('aria-hidden', 'true');
    key.textContent = index < 9 ? String(index + 1) : '';
    if (index >= 9) key.hidden = true;
    const label = document.createElement('span');
    label.className = 'choice__label';
    label.textContent = text(choice.label);
    button.append(thumb, key, label);
    button.addEventListener('click', () => choose(index));
    item.append(button);
    return item;
  }

  function choose(index) {
    if (state.screen !== 'choice' || index < 0 || index >= state.choices.length) return;
    const target = state.choices[index];
    note('chosen', { sceneletId: target.sceneletId, index });
    stopBranchNarration();
    unpause({ resumeMusic: true });
    enterScenelet(target.sceneletId);
    ui.pauseButton.focus({ preventScroll: true });
  }

  function showEnd(kind) {
    abandonStep();
    unpause({ resumeMusic: false });
    music.setCue(null); // fades out
    state.phase = null;
    state.choices = [];
    setScreen(kind);
    note(kind, { sceneletId: state.sceneletId });
    (kind === 'terminal' ? ui.restartButton : ui.incompleteBack).focus();
  }

  function goToStart() {
    abandonStep();
    unpause({ resumeMusic: false });
    music.stopNow();
    state.sceneletId = null;
    state.shotPos = -1;
    state.phase = null;
    state.choices = [];
    ui.caption.textContent = '';
    showImage(firstImage(story.rootId));
    setScreen('start');
    note('title-screen');
    ui.startButton.focus();
  }

  // ------------------------------------------------------------- pause/resume

  function togglePause() {
    if (state.paused) resume();
    else pause();
  }

  function pause() {
    if (state.paused || (state.screen !== 'playing' && state.screen !== 'choice')) return;
    state.paused = true;
    clock.pause();
    if (narration) narration.el.pause();
    if (branchNarration) branchNarration.pause();
    music.pause();
    renderPause();
    note('pause');
  }

  function resume() {
    if (!state.paused) return;
    state.paused = false;
    clock.resume();
    if (narration && !narration.settled) narration.play();
    if (branchNarration && !branchNarration.ended) branchNarration.play().catch(() => {});
    music.resume();
    renderPause();
    note('resume');
  }

  /** Leaves the paused state without resuming the step being abandoned. */
  function unpause({ resumeMusic }) {
    if (!state.paused) return;
    state.paused = false;
    clock.paused = false;
    if (resumeMusic) music.resume();
    renderPause();
  }

  function renderPause() {
    ui.pauseButton.setAttribute('aria-pressed', String(state.paused));
    ui.pauseLabel.textContent = state.paused ? 'Resume' : 'Pause';
    // SVG elements have no `hidden` property: use the attribute
    ui.iconPause.toggleAttribute('hidden', state.paused);
    ui.iconPlay.toggleAttribute('hidden', !state.paused);
    ui.pausedBadge.hidden = !state.paused;
    ui.app.classList.toggle('is-paused', state.paused);
  }

  // ----------------------------------------------------------------- screens

  function setScreen(screen) {
    state.screen = screen;
    ui.app.dataset.screen = screen;
    ui.startScreen.hidden = screen !== 'start';
    ui.choiceScreen.hidden = screen !== 'choice';
    ui.terminalScreen.hidden = screen !== 'terminal';
    ui.incompleteScreen.hidden = screen !== 'incomplete';
    ui.errorScreen.hidden = screen !== 'error';
    // the stage is decorative; keep keyboard focus out of whatever is covered
    ui.controls.inert = screen !== 'playing' && screen !== 'choice';
  }

  function setCaptions(on) {
    state.captions = on;
    ui.app.classList.toggle('has-captions', on);
    ui.captionsButton.setAttribute('aria-pressed', String(on));
  }

  function showError(message) {
    state.screen = 'error';
    ui.errorText.textContent = message;
    setScreen('error');
  }

  // ---------------------------------------------------------------- keyboard

  function onKeyDown(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const inStory = state.screen === 'playing' || state.screen === 'choice';
    if (event.key === ' ' || event.code === 'Space') {
      if (inStory) {
        // Space is play/pause everywhere in the story (also when a button has focus)
        event.preventDefault();
        if (!event.repeat) togglePause();
      } else if (state.screen === 'start' && document.activeElement === document.body) {
        event.preventDefault();
        startStory();
      }
      return;
    }
    if (state.screen === 'choice' && /^[1-9]$/.test(event.key)) {
      event.preventDefault();
      choose(Number(event.key) - 1);
      return;
    }
    if (inStory && (event.key === 'c' || event.key === 'C')) {
      setCaptions(!state.captions);
      return;
    }
    if (state.screen === 'start' && event.key === 'Enter' && document.activeElement === document.body) {
      startStory();
    }
  }

  // ------------------------------------------------------------------ wiring

  function init() {
    setCaptions(true);
    try {
      story = loadStory();
    } catch (err) {
      showError(`The story data in this bundle could not be read (${err && err.message}).`);
      return;
    }
    document.title = story.title;
    ui.startTitle.textContent = story.title;
    ui.topbarTitle.textContent = story.title;
    ui.startButton.addEventListener('click', startStory);
    ui.restartButton.addEventListener('click', goToStart);
    ui.incompleteBack.addEventListener('click', goToStart);
    ui.homeButton.addEventListener('click', goToStart);
    ui.pauseButton.addEventListener('click', togglePause);
    ui.captionsButton.addEventListener('click', () => setCaptions(!state.captions));
    document.addEventListener('keydown', onKeyDown);
    showImage(firstImage(story.rootId));
    setScreen('start');
    ui.startButton.focus();
  }

  /** Read-only test hook; the page works the same without it. */
  window.__player = Object.freeze({
    speed,
    timing: TIMING,
    state() {
      const scenelet = story && state.sceneletId ? story.byId.get(state.sceneletId) : null;
      const shot = scenelet && state.shotPos >= 0 ? scenelet.shots[state.shotPos] : null;
      return {
        screen: state.screen,
        sceneletId: state.sceneletId,
        sceneletLabel: scenelet ? scenelet.label : null,
        shotIndex: shot ? shot.shotIndex : null,
        shotPosition: shot ? state.shotPos : null,
        phase: state.phase,
        paused: state.paused,
        captions: state.captions,
        image: state.image,
        imagePath: state.imagePath,
        musicCue: music.current ? music.current.cue : null,
        musicPlaying: music.playing(),
        choices: state.choices.map((c) => Object.assign({}, c)),
      };
    },
    events: () => events.map((e) => Object.assign({}, e)),
  });

  init();
})();
