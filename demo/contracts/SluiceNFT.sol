// SPDX-License-Identifier: MIT
// A minimal ERC-721 collection for the sluice demo chain. Anyone may mint;
// token ids count up from 1. No safeTransfer / metadata: the demo needs the
// Transfer events, not wallet compatibility.
pragma solidity ^0.8.24;

contract SluiceNFT {
    string public constant name = "Sluice Demo Collection";
    string public constant symbol = "SLC";

    uint256 public totalSupply;
    mapping(uint256 => address) private _owners;
    mapping(address => uint256) public balanceOf;
    mapping(uint256 => address) public getApproved;

    event Transfer(address indexed from, address indexed to, uint256 indexed tokenId);
    event Approval(address indexed owner, address indexed approved, uint256 indexed tokenId);

    function ownerOf(uint256 tokenId) public view returns (address) {
        address o = _owners[tokenId];
        require(o != address(0), "no such token");
        return o;
    }

    function mint(address to) external returns (uint256 tokenId) {
        require(to != address(0), "zero address");
        tokenId = ++totalSupply;
        _owners[tokenId] = to;
        balanceOf[to] += 1;
        emit Transfer(address(0), to, tokenId);
    }

    function approve(address to, uint256 tokenId) external {
        address o = ownerOf(tokenId);
        require(msg.sender == o, "not owner");
        getApproved[tokenId] = to;
        emit Approval(o, to, tokenId);
    }

    function transferFrom(address from, address to, uint256 tokenId) external {
        address o = ownerOf(tokenId);
        require(o == from, "wrong from");
        require(msg.sender == o || msg.sender == getApproved[tokenId], "not allowed");
        require(to != address(0), "zero address");
        delete getApproved[tokenId];
        _owners[tokenId] = to;
        balanceOf[from] -= 1;
        balanceOf[to] += 1;
        emit Transfer(from, to, tokenId);
    }
}
