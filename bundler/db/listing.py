"""The story list behind ``bundler stories`` (one query, whatever the number of stories)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from bundler.db.connect import set_local_timeouts

# "usable" media mirrors the planner's rule: non-blank and not the N/A placeholder
_USABLE = "(nullif(upper(trim({col})), '') is not null and upper(trim({col})) <> 'N/A')"

LIST_SQL = f"""
select s.id::text, s.display_name,
       (select count(*) from scenelets c where c.story_id = s.id) as scenelets,
       (select count(*) from shots h where h.story_id = s.id) as shots,
       exists (
           select 1 from scenelets r join shots h on h.scenelet_ref = r.id
           where r.story_id = s.id and r.parent_id is null
             and ({_USABLE.format(col="h.key_frame_image_path")}
                  or {_USABLE.format(col="h.audio_file_path")})
       ) as root_playable
from stories s
order by s.display_name, s.id
"""


@dataclass(frozen=True)
class StorySummary:
    story_id: str
    title: str
    scenelets: int
    shots: int
    root_playable: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "storyId": self.story_id,
            "title": self.title,
            "scenelets": self.scenelets,
            "shots": self.shots,
            "rootPlayable": self.root_playable,
        }


def list_stories(conn: psycopg.Connection) -> list[StorySummary]:
    with conn.transaction():
        set_local_timeouts(conn)
        return [StorySummary(*row) for row in conn.execute(LIST_SQL).fetchall()]
