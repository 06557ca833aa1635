-- The pipeline's schema (docs/design.md §1). Idempotent: safe to run on an existing database.
create table if not exists public.stories (
    id uuid primary key default gen_random_uuid(),
    display_name text not null check (char_length(trim(display_name)) > 0),
    display_name_upper text generated always as (upper(display_name)) stored,
    initial_prompt text not null,
    story_constitution jsonb null,
    visual_design_document jsonb null,
    audio_design_document jsonb null,
    visual_reference_package jsonb null,
    created_at timestamptz not null default timezone('utc', now()),
    updated_at timestamptz not null default timezone('utc', now())
);
create index if not exists stories_display_name_upper_idx on public.stories (display_name_upper);

create table if not exists public.scenelets (
    id uuid primary key default gen_random_uuid(),
    story_id uuid not null references public.stories (id) on delete cascade,
    parent_id uuid null references public.scenelets (id) on delete cascade,
    choice_label_from_parent text null,
    choice_prompt text null,
    content jsonb not null,
    is_branch_point boolean not null default false,
    is_terminal_node boolean not null default false,
    branch_audio_file_path text null,
    created_at timestamptz not null default timezone('utc', now())
);
create index if not exists scenelets_story_id_idx on public.scenelets (story_id);
create index if not exists scenelets_parent_id_idx on public.scenelets (parent_id);

create table if not exists public.shots (
    id uuid primary key default gen_random_uuid(),
    story_id uuid not null references public.stories (id) on delete cascade,
    scenelet_ref uuid not null references public.scenelets (id) on delete cascade,
    scenelet_id text not null,
    scenelet_sequence integer not null check (scenelet_sequence > 0),
    shot_index integer not null check (shot_index > 0),
    storyboard_payload jsonb not null,
    key_frame_image_path text null,
    audio_file_path text null,
    video_file_path text null,
    created_at timestamptz not null default timezone('utc', now()),
    updated_at timestamptz not null default timezone('utc', now()),
    constraint shots_story_scenelet_shot_key unique (story_id, scenelet_id, shot_index)
);
create index if not exists shots_scenelet_ref_idx on public.shots (scenelet_ref);
create index if not exists shots_story_scenelet_idx on public.shots (story_id, scenelet_id, shot_index);
comment on column public.shots.scenelet_ref is
    'UUID foreign key reference to scenelets.id. Links shot to its parent scenelet for efficient joins and proper referential integrity.';

create or replace function public.set_current_timestamp_updated_at() returns trigger
language plpgsql as $$
begin
    new.updated_at := timezone('utc', now());
    return new;
end;
$$;

drop trigger if exists set_current_timestamp_updated_at on public.stories;
create trigger set_current_timestamp_updated_at before update on public.stories
    for each row execute function public.set_current_timestamp_updated_at();
drop trigger if exists set_current_timestamp_updated_at_shots on public.shots;
create trigger set_current_timestamp_updated_at_shots before update on public.shots
    for each row execute function public.set_current_timestamp_updated_at();
