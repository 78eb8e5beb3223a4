"""Dataset policies and user attributes through the API for the tests."""

from __future__ import annotations

from typing import Any

from tests.support.client import Api

POLICY_FIELDS = """id version targetType user { id } group { id } dataset { id }
  rowFilters { column values userAttribute } hiddenColumns createdAt updatedAt"""
CREATE = f"""mutation($i: CreateDatasetPolicyInput!) {{ createDatasetPolicy(input: $i) {{
  policy {{ {POLICY_FIELDS} }} }} }}"""
SET_DEFAULT = """mutation($id: ID!, $d: DatasetAccessDefault) {
  updateDataset(input: {id: $id, defaultAccess: $d}) { dataset { defaultAccess } } }"""
SET_ATTRIBUTES = """mutation($u: ID!, $a: JSON!) { setUserAttributes(input: {userId: $u, attributes: $a}) {
  user { id attributes } } }"""


def policy_input(dataset_id: str, target_type: str, target_id: str, **rest: Any) -> dict[str, Any]:
    return {
        "i": {"datasetId": dataset_id, "targetType": target_type, "targetId": target_id, **rest}
    }


async def create_policy(
    api: Api, token: str, dataset_id: str, target_type: str, target_id: str, **rest: Any
) -> dict[str, Any]:
    data = await api.ok(
        CREATE, policy_input(dataset_id, target_type, target_id, **rest), token=token
    )
    return data["createDatasetPolicy"]["policy"]  # type: ignore[no-any-return]
