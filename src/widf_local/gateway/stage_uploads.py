"""PUT from a client that uploads to cloud storage only: connector 5.x, whose Rust core has no transfer for a
local stage ("Unknown location type: LOCAL_FS").

Snowflake on AWS answers a PUT with the stage's S3 location: `locationType` S3, `location` as `bucket/prefix/`,
the region, temporary credentials, and an `endPoint` when the client must use another S3 endpoint than the
region's (FIPS, a private endpoint); the client then uploads each file to `prefix + file name` itself. The
gateway answers a 5.x client the same way, naming a bucket on the stack's own S3 (moto) and its address as the
endPoint; the core honours an endPoint given with its `http://` scheme. The uploads wait there until a statement
next reads the stage: then they move into the stage's directory, the one store every stage statement reads
(stages.StageStore), so a file PUT from 5.x is listed, copied and removed like one PUT from 4.x.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

BUCKET = "widf-local-stage-uploads"
# moto takes any credentials; these name what they are, and are worth nothing anywhere else.
CREDENTIALS = {"AWS_KEY_ID": "local-stage-uploads", "AWS_SECRET_KEY": "local-stage-uploads", "AWS_TOKEN": "local"}


class StageUploads:
    def __init__(self, endpoint: str, region: str, root: Path):
        self.endpoint, self.region, self.root = endpoint, region, root
        self._client: Any = None
        self._lock = threading.Lock()

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                import boto3  # the local stack's environment has it (moto's own dependency)

                client = boto3.client(
                    "s3",
                    endpoint_url=self.endpoint,
                    region_name=self.region,
                    aws_access_key_id=CREDENTIALS["AWS_KEY_ID"],
                    aws_secret_access_key=CREDENTIALS["AWS_SECRET_KEY"],
                )
                try:
                    client.create_bucket(Bucket=BUCKET)
                except client.exceptions.BucketAlreadyOwnedByYou:
                    pass
                self._client = client
            return self._client

    def prefix(self, directory: Path) -> str:
        return directory.relative_to(self.root).as_posix().strip("/") + "/"

    def stage_info(self, directory: Path) -> dict[str, Any]:
        """The `stageInfo` of a PUT's answer for uploads into this stage directory (the PUT's target folder)."""
        self.client()  # the bucket exists before the client uploads into it
        return {
            "locationType": "S3",
            "location": f"{BUCKET}/{self.prefix(directory)}",
            "path": self.prefix(directory),
            "region": self.region,
            "storageAccount": None,
            "isClientSideEncrypted": False,
            "creds": dict(CREDENTIALS),
            "endPoint": self.endpoint,
            "useS3RegionalUrl": False,
            "useVirtualUrl": False,
        }

    def collect(self, directory: Path) -> None:
        """Move the uploads waiting for this stage directory (and below it) into it."""
        if self._client is None:
            return  # nothing was ever PUT this way
        client, prefix = self.client(), self.prefix(directory)
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            for item in page.get("Contents", []):
                target = self.root.joinpath(*item["Key"].split("/"))
                target.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(BUCKET, item["Key"], str(target))
                client.delete_object(Bucket=BUCKET, Key=item["Key"])
