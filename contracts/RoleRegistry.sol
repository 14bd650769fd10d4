// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IRoleRegistry} from "./interfaces/IRoleRegistry.sol";

/// @dev The governor is OpenZeppelin's DEFAULT_ADMIN_ROLE, the admin of every other role.
/// Kept in the same deployment as the ledgers so a role check is one internal SLOAD, which is
/// what keeps a batch anchor under 50,000 gas.
abstract contract RoleRegistry is AccessControl, IRoleRegistry {
    bytes32 public constant GOVERNOR_ROLE = DEFAULT_ADMIN_ROLE;
    bytes32 public constant REGISTRAR_ROLE = keccak256("qiyema.registrar");
    bytes32 public constant NOTARY_ROLE = keccak256("qiyema.notary");
    bytes32 private constant _ISSUER_DOMAIN = "qiyema.issuer";

    constructor(address governor) {
        _grantRole(DEFAULT_ADMIN_ROLE, governor);
    }

    /// @inheritdoc IRoleRegistry
    function issuerRole(bytes32 category) public pure returns (bytes32) {
        return keccak256(abi.encode(_ISSUER_DOMAIN, category));
    }

    function supportsInterface(bytes4 interfaceId) public view virtual override returns (bool) {
        return interfaceId == type(IRoleRegistry).interfaceId || super.supportsInterface(interfaceId);
    }
}
